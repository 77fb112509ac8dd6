"""Names and listings of the live registry through the remote backend
(src/remote) that once came out wrong or cut the connection:

- a key opened in the 32-bit view is the redirected one (under HKLM,
  Software\\Wow6432Node\\...), but its path and name are the ones the caller
  asked for in that view, as Windows' APIs present it (the view hides
  Wow6432Node), so the path reopens the same key in the same view;
- ``key.value(name).name`` is the value's name as stored, whatever spelling
  the caller used and whichever of value(), values() or a named batch ran
  first, as the offline regf backend answers;
- a key whose values hold more data than one agent frame (64 MiB) lists
  its values (names, types, sizes), and each value's data is read by itself;
- a 256-character subkey name (Wine 8's server allows 256, Windows 255) is
  listed, and the connection lives on.
"""
from __future__ import annotations

import os

import pytest

from wine_session import BASE, registry, sandbox, wine  # noqa: F401  (shared fixtures)

KEY_READ = 0x20019


def _fresh(registry, path):  # noqa: F811
    """The key through a hive (root, view, access) no other test uses here,
    so no value or key entry cached by an earlier call decides the answer."""
    return registry.open_key("HKCU", path, access=KEY_READ | 0x1)   # + KEY_QUERY_VALUE again: its own Hive


# ---- 1. the 32-bit view ------------------------------------------------------


@pytest.fixture
def view32_key(registry):  # noqa: F811
    name = f"rf-view32-{os.getpid()}"
    registry.create_key("HKLM", rf"Software\{name}\Sub", view=32).close()
    yield name
    registry.delete_key("HKLM", rf"Software\{name}", view=32, tree=True)


def test_a_32bit_view_key_has_the_path_and_name_asked_for_in_its_view(registry, view32_key):  # noqa: F811
    name = view32_key
    key = registry.open_key("HKLM", rf"Software\{name}\Sub", view=32)
    assert key.name == "Sub"
    assert key.path == rf"Software\{name}\Sub"
    assert key.parent.path == rf"Software\{name}" and key.parent.name == name
    software = registry.open_key("HKLM", "Software", view=32)
    assert software.name == "Software" and software.path == "Software"
    assert key.parent.parent.name == "Software"
    # keys listed in the view carry its paths too
    assert [k.path for k in key.parent.subkeys()] == [rf"Software\{name}\Sub"]
    # the path reopens the same key in the same view
    hive32 = registry.hive("HKLM", view=32)
    assert hive32.open(key.path) == key
    assert hive32.open(key.path).path == key.path
    # and the key is still the redirected one: the 64-bit view finds it
    # under Wow6432Node, and not at the caller's path
    assert registry.open_key("HKLM", rf"Software\Wow6432Node\{name}\Sub", view=64).name == "Sub"
    with pytest.raises(FileNotFoundError):
        registry.open_key("HKLM", rf"Software\{name}\Sub", view=64)


def test_the_64bit_view_still_shows_wow6432node(registry, view32_key):  # noqa: F811
    key = registry.open_key("HKLM", rf"Software\Wow6432Node\{view32_key}", view=64)
    assert key.path == rf"Software\Wow6432Node\{view32_key}"
    assert key.parent.name == "Wow6432Node"


# ---- 4. a 256-character subkey name (Wine) ---------------------------------------


def test_a_256_char_subkey_name_is_listed_and_the_connection_lives(registry, sandbox, wine):  # noqa: F811
    long_name = "L" * 200 + "ong-name-of-256-characters-" + "x" * 29
    assert len(long_name) == 256
    # another process makes it: Wine's server takes up to 256 characters
    wine.reg("add", rf"HKCU\{sandbox.path}\{long_name}")
    sandbox.create_key("short").close()
    key = registry.open_key("HKCU", sandbox.path)
    assert sorted(key.subkey_names()) == sorted([long_name, "short"])
    # the next request on the same registry works
    assert key.info().subkeys == 2
    sub = next(k for k in key.subkeys() if k.name == long_name)
    assert sub.path == rf"{sandbox.path}\{long_name}"
    # opening it goes by path, and a path component has at most 255
    # characters (Windows' limit, kept by rf_key_open): a clear error
    with pytest.raises(OSError) as e:
        sub.info()
    assert e.value.winerror == 161 and "255" in str(e.value)
    assert registry.open_key("HKCU", rf"{sandbox.path}\short").name == "short"
    assert registry.ping(b"alive") == b"alive" and not registry.closed


def test_a_key_deleted_and_made_again_by_another_program_opens_afresh(registry, sandbox, wine):  # noqa: F811
    """The agent caches a handle per key it opened and opens deeper paths
    relative to it. Another program deleting that key (and making it again)
    left the handle stale: every open below it failed once with
    STATUS_KEY_DELETED before the cache forgot it, though the path exists."""
    sandbox.create_key(r"a\b").close()
    a = registry.open_key("HKCU", rf"{sandbox.path}\a")          # the agent keeps a handle to "a"
    assert a.subkey_names() == ["b"]
    wine.reg("delete", rf"HKCU\{sandbox.path}\a", "/f")
    wine.reg("add", rf"HKCU\{sandbox.path}\a\b\c")
    assert registry.open_key("HKCU", rf"{sandbox.path}\a\b\c").name == "c"
    assert registry.open_key("HKCU", rf"{sandbox.path}\a").subkey_names() == ["b"]
