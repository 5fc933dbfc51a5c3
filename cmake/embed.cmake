# Embed the web UI (src/server/ui/*) into the binary: a generated C file defines
#   const struct ui_asset ui_assets[]; const size_t ui_n_assets;
# (see src/server/ui_assets.h). Regenerated whenever an asset changes.
function(joey_embed_ui target)
  file(GLOB_RECURSE assets CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/server/ui/*)
  set(out ${CMAKE_BINARY_DIR}/generated/ui_assets.c)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DUI_DIR=${CMAKE_SOURCE_DIR}/src/server/ui -DOUT=${out}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${assets} ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding the web UI")
  target_sources(${target} PRIVATE ${out})
endfunction()
