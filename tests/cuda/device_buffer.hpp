#pragma once
// A typed cudaMalloc allocation for the CUDA tests: upload, download, freed on scope exit.
// Written against the CUDA runtime names, so the kernel tests build for the GPU too.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::cuda_test {

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    void* pointer = nullptr;
    EXPECT_EQ(cudaMalloc(&pointer, count * sizeof(T)), cudaSuccess);
    data_ = static_cast<T*>(pointer);
  }
  explicit DeviceBuffer(const std::vector<T>& values) : DeviceBuffer(values.size()) { upload(values); }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

  void upload(const std::vector<T>& values) {
    ASSERT_EQ(values.size(), count_);
    ASSERT_EQ(cudaMemcpy(data_, values.data(), count_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> values(count_);
    EXPECT_EQ(cudaMemcpy(values.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return values;
  }
  void fill_bytes(int byte) { EXPECT_EQ(cudaMemset(data_, byte, count_ * sizeof(T)), cudaSuccess); }

 private:
  std::size_t count_ = 0;
  T* data_ = nullptr;
};

}  // namespace kiln::cuda_test
