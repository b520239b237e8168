#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gpu/error.hpp"
#include "gpu/tensor.hpp"
#include "tessera/json.hpp"

namespace tessera::io {
namespace {

uint32_t element_size_of(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int64_t StoredTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StoredTensor::shape_str() const { return shape_text(shape); }

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(path + ": not a safetensors file (" + std::to_string(size_) + " bytes, shorter than its header)");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(path + ": cannot map (" + std::strerror(errno) + ")");
  }
  try {
    const auto* bytes = static_cast<const uint8_t*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
    if (header_len > size_ - 8)
      throw Error(path + ": not a safetensors file (header of " + std::to_string(header_len) +
                  " bytes in a file of " + std::to_string(size_) + ")");
    const std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_len);
    json::Value doc;
    try {
      doc = json::parse(header);
    } catch (const json::ParseError& e) {
      throw Error(path + ": bad safetensors header: " + e.what());
    }
    if (!doc.is(json::Kind::object)) throw Error(path + ": bad safetensors header: not a JSON object");
    const uint8_t* data = bytes + 8 + header_len;
    const uint64_t data_size = size_ - 8 - header_len;
    for (const auto& [name, v] : doc.members()) {
      try {
        if (name == "__metadata__") {
          for (const auto& [k, mv] : v.members()) metadata_[k] = mv.string();
          continue;
        }
        StoredTensor t;
        t.name = name;
        t.dtype = v.at("dtype").string();
        t.element_size = element_size_of(t.dtype);
        if (!t.element_size) throw Error("unknown dtype \"" + t.dtype + "\"");
        for (const json::Value& d : v.at("shape").array()) {
          if (d.integer() < 0) throw Error("negative dimension");
          t.shape.push_back(d.integer());
        }
        const auto& offsets = v.at("data_offsets").array();
        if (offsets.size() != 2) throw Error("data_offsets must be [begin, end]");
        const int64_t begin = offsets[0].integer(), end = offsets[1].integer();
        if (begin < 0 || end < begin || static_cast<uint64_t>(end) > data_size)
          throw Error("data [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") lies outside the data section of " + std::to_string(data_size) + " bytes");
        t.bytes = static_cast<uint64_t>(end - begin);
        if (t.bytes != static_cast<uint64_t>(t.numel()) * t.element_size)
          throw Error("shape " + t.shape_str() + " of " + t.dtype + " needs " +
                      std::to_string(static_cast<uint64_t>(t.numel()) * t.element_size) + " bytes, the file has " +
                      std::to_string(t.bytes));
        t.data = data + begin;
        tensors_.push_back(std::move(t));
      } catch (const json::TypeError& e) {
        throw Error(path + ": tensor '" + name + "': " + e.what());
      } catch (const Error& e) {
        if (name == "__metadata__") throw Error(path + ": bad __metadata__: " + e.what());
        throw Error(path + ": tensor '" + name + "': " + e.what());
      }
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    // Overlapping ranges mean a corrupt or hostile file.
    std::vector<const StoredTensor*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->data < b->data; });
    for (size_t i = 1; i < by_offset.size(); ++i)
      if (by_offset[i - 1]->data + by_offset[i - 1]->bytes > by_offset[i]->data)
        throw Error(path + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)), map_(o.map_), size_(o.size_), tensors_(std::move(o.tensors_)),
      metadata_(std::move(o.metadata_)) {
  o.map_ = nullptr;
  o.size_ = 0;
}

const StoredTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const StoredTensor& t, const std::string& n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

const StoredTensor& SafetensorsFile::at(const std::string& name) const {
  if (const StoredTensor* t = find(name)) return *t;
  throw Error(path_ + ": no tensor '" + name + "'");
}

void SafetensorsFile::expect_shape(const StoredTensor& t, const std::vector<int64_t>& shape) const {
  if (t.shape != shape)
    throw Error(path_ + ": tensor '" + t.name + "' has shape " + t.shape_str() + ", expected " + shape_text(shape));
}

std::vector<float> SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& shape) const {
  const StoredTensor& t = at(name);
  if (!shape.empty()) expect_shape(t, shape);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  try {
    convert_to_f32(t, out.data());
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
  return out;
}

void convert_to_f32(const StoredTensor& t, float* out) {
  const size_t n = static_cast<size_t>(t.numel());
  if (t.dtype == "F32") {
    std::memcpy(out, t.data, n * 4);
  } else if (t.dtype == "F16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      out[i] = gpu::half_to_float(h);
    }
  } else if (t.dtype == "BF16") {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  } else {
    throw Error("tensor '" + t.name + "' is " + t.dtype + "; only F32, F16 and BF16 convert to floats");
  }
}

}  // namespace tessera::io
