# Dependencies come from Debian packages; a missing one fails the configure step
# with the package to install.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found\nhint: apt-get install -y pkg-config")
endif()

function(joey_require_pkg var module debpkg)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "missing library: ${module}\nhint: apt-get install -y ${debpkg}")
  endif()
endfunction()

joey_require_pkg(SQLITE3 sqlite3 libsqlite3-dev)
joey_require_pkg(JANSSON jansson libjansson-dev)
joey_require_pkg(XXHASH libxxhash libxxhash-dev)
joey_require_pkg(CURL libcurl libcurl4-openssl-dev)
joey_require_pkg(PQ libpq libpq-dev)
joey_require_pkg(MARIADB libmariadb libmariadb-dev)
joey_require_pkg(SODIUM libsodium libsodium-dev)
joey_require_pkg(OPENSSL openssl libssl-dev)
