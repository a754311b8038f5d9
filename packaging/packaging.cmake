# The man page and the service unit are made by the built binary (`vmgate man`, `vmgate
# systemd-unit`), so that they say what this build does; `cmake --install` lays out a system:
# binary, man page, unit, sysusers.d and tmpfiles.d entries, documentation with the example.
include(GNUInstallDirs)

# Relative to the install prefix: /usr/lib/... for a package, /usr/local/lib/... (which systemd
# also reads) for a plain `cmake --install`.
set(VMGATE_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where vmgate.service is installed, under the prefix")
set(VMGATE_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING "Where the sysusers.d entry is installed, under the prefix")
set(VMGATE_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING "Where the tmpfiles.d entry is installed, under the prefix")

# build/vmgate.1, part of `all`.
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/vmgate.1
  COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:vmgate> -DARGS=man -DOUT=${CMAKE_BINARY_DIR}/vmgate.1
          -P ${PROJECT_SOURCE_DIR}/packaging/capture_output.cmake
  DEPENDS vmgate ${PROJECT_SOURCE_DIR}/packaging/capture_output.cmake
  COMMENT "Generating vmgate.1 with vmgate man" VERBATIM)
add_custom_target(vmgate_man ALL DEPENDS ${CMAKE_BINARY_DIR}/vmgate.1)

install(TARGETS vmgate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/vmgate.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES packaging/vmgate.sysusers DESTINATION ${VMGATE_SYSUSERS_DIR} RENAME vmgate.conf)
install(FILES packaging/vmgate.tmpfiles DESTINATION ${VMGATE_TMPFILES_DIR} RENAME vmgate.conf)
install(FILES README.md docs/configuration.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/office.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The unit names the binary where it is installed, and `cmake --install --prefix P` decides that
# only at install time: so the unit is made then (for prefix /usr it is packaging/vmgate.service).
set(VMGATE_EXE "$<TARGET_FILE:vmgate>")
string(CONFIGURE [[
set(unit_dir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/@VMGATE_SYSTEMD_UNIT_DIR@")
execute_process(COMMAND "@VMGATE_EXE@" systemd-unit --binary "${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_BINDIR@/vmgate"
                OUTPUT_VARIABLE unit ERROR_VARIABLE error RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "vmgate systemd-unit failed (${rc}): ${error}")
endif()
message(STATUS "Installing: ${unit_dir}/vmgate.service")
file(MAKE_DIRECTORY "${unit_dir}")
file(WRITE "${unit_dir}/vmgate.service" "${unit}")
]] vmgate_install_unit @ONLY)
install(CODE "${vmgate_install_unit}")
