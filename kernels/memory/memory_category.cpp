#include "kernels/memory/memory_category.hpp"

namespace kiln::memory {

std::string_view memory_category_name(MemoryCategory category) {
  switch (category) {
    case MemoryCategory::parameters: return "parameters";
    case MemoryCategory::gradients: return "gradients";
    case MemoryCategory::optimizer_state: return "optimizer_state";
    case MemoryCategory::activations: return "activations";
    case MemoryCategory::communication: return "communication";
    case MemoryCategory::pipeline: return "pipeline";
    case MemoryCategory::kv_cache: return "kv_cache";
    case MemoryCategory::workspace: return "workspace";
  }
  return "?";
}

}  // namespace kiln::memory
