# Cross-compiling regfast for 64-bit Windows with mingw-w64, running the
# result under Wine:
#   cmake -S . -B build/nt -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DREGFAST_BUILD_TESTS=ON -DREGFAST_BUILD_BENCH=ON
#   ninja -C build/nt && ctest --test-dir build/nt --output-on-failure
# ctest prefixes every test executable with CMAKE_CROSSCOMPILING_EMULATOR, so
# `add_test(NAME x COMMAND x)` runs `wine x.exe`; exit codes pass through.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(REGFAST_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER   ${REGFAST_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${REGFAST_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER  ${REGFAST_MINGW_TRIPLE}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${REGFAST_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static libgcc (and winpthread, should anything pull it in): the .exe files
# must start under Wine without mingw's DLLs on its PATH.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc")

# mingw-w64's own printf family: msvcrt.dll's lacks %zu/%lld, which regfast's
# error messages use.
set(CMAKE_C_FLAGS_INIT "-D__USE_MINGW_ANSI_STDIO=1")

# Debian ships `wine` (64-bit capable) and no `wine64` on PATH.
find_program(REGFAST_WINE NAMES wine wine64)
find_program(REGFAST_WINEBOOT NAMES wineboot)
find_program(REGFAST_WINESERVER NAMES wineserver wineserver64
             PATHS /usr/lib/wine /usr/lib/x86_64-linux-gnu/wine)
if(REGFAST_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${REGFAST_WINE})
endif()
