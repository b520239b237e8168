#pragma once
// Safetensors weight files, mapped read-only and checked when opened: the header is valid JSON, every
// tensor's dtype is known, its byte range matches its shape and lies inside the file, and ranges do not
// overlap. Hugging Face, min-dalle conversions and Tessera's own models all use this format.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessera::io {

struct StoredTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I32", "I64", "U8", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping
  uint64_t bytes = 0;
  uint32_t element_size = 0;
  int64_t numel() const;
  std::string shape_str() const;  // "[4,8]"
};

// Owns the mapping; move-only.
class SafetensorsFile {
 public:
  // Throws tessera::Error naming `path` and what is wrong with it.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) = delete;
  SafetensorsFile(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<StoredTensor>& tensors() const { return tensors_; }  // sorted by name
  const StoredTensor* find(const std::string& name) const;
  // Throws naming the file and the tensor when it is absent.
  const StoredTensor& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor converted to f32, checked against `shape` when it is not empty (the error names the file,
  // the tensor, and both shapes). F32, F16 and BF16 convert; other dtypes are refused.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& shape = {}) const;
  // Checks a stored shape: throws "<file>: tensor 'name' has shape [a,b], expected [c,d]".
  void expect_shape(const StoredTensor& t, const std::vector<int64_t>& shape) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<StoredTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Widens stored F32 / F16 / BF16 elements to f32; `out` holds t.numel() floats.
void convert_to_f32(const StoredTensor& t, float* out);

}  // namespace tessera::io
