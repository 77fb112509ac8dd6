# bench/nt_bench.c: the reference chapter's live-registry table, reproduced.
# Windows only (bench/run_nt_bench.sh builds it with the mingw-w64 toolchain
# and runs it under Wine). Included from the top-level CMakeLists.txt.
if(WIN32 AND REGFAST_BUILD_BENCH)
  add_executable(nt_bench ${PROJECT_SOURCE_DIR}/bench/nt_bench.c)
  target_link_libraries(nt_bench PRIVATE regfast_c)
endif()
