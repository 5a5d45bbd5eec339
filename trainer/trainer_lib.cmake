# The trainer library: recipes, schedules, optimizer, checkpoints, metrics, model and loop.
# Included from the top-level CMakeLists.txt (after data/) so the `kiln` binary and the unit
# tests can link it; the CLI sources in trainer/cli stay a separate executable.
file(GLOB KILN_TRAINER_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/config/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/optim/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/metrics/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/model/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/plan/*.cpp
  ${CMAKE_CURRENT_LIST_DIR}/export/*.cpp)
add_library(kiln_trainer STATIC ${KILN_TRAINER_SOURCES})
kiln_target_defaults(kiln_trainer)
target_include_directories(kiln_trainer SYSTEM PUBLIC ${HDF5_INCLUDE_DIRS})
target_compile_definitions(kiln_trainer PUBLIC ${HDF5_C_DEFINITIONS})
target_link_libraries(kiln_trainer PUBLIC kiln_data kiln_kernels kiln_parallel kiln_core
  yaml-cpp nlohmann_json::nlohmann_json ${HDF5_C_LIBRARIES})
# The emulated CUDA device as a selectable backend (KILN_CUDA_DEVICE=emulated; test builds).
if(KILN_CUDA_EMULATION)
  target_link_libraries(kiln_trainer PUBLIC kiln_cuda_emulation)
  target_compile_definitions(kiln_trainer PRIVATE KILN_WITH_CUDA_EMULATION=1)
endif()
