# ctest.cmake: the fuzz targets as CTest tests of an ordinary (gcc) test build, so they
# count in scripts/test.sh's summary. The targets themselves need clang and libFuzzer
# and are built in a separate build directory (JOEY_FUZZ=ON); scripts/test.sh builds it
# and passes it here. Each test runs one target for JOEY_FUZZ_SECONDS on a scratch
# copy of its corpus (tests/fuzz/run_one.sh).
set(JOEY_FUZZ_BUILD "" CACHE PATH "A clang build with JOEY_FUZZ=ON whose targets CTest runs (empty: none)")
set(JOEY_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz target runs as a CTest test")
if(JOEY_FUZZ_BUILD)
  file(GLOB joey_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
  foreach(src ${joey_fuzz_sources})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME fuzz/${name}
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_one.sh
                     ${JOEY_FUZZ_BUILD}/tests/fuzz/fuzz_${name} ${JOEY_FUZZ_SECONDS})
    math(EXPR joey_fuzz_timeout "${JOEY_FUZZ_SECONDS} + 120")
    set_tests_properties(fuzz/${name} PROPERTIES TIMEOUT ${joey_fuzz_timeout})
  endforeach()
endif()
