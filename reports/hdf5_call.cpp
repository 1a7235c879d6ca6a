#include "reports/hdf5_call.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/strings.h"

namespace semskip::report::detail {

namespace {

// Only the outermost entry keeps its function name (the API call that failed); the rest are
// HDF5 internals whose descriptions carry the cause (file name, errno, ...).
herr_t collect_message(unsigned n, const H5E_error2_t* err, void* data) {
  auto* messages = static_cast<std::vector<std::string>*>(data);
  std::string msg = (n == 0 && err->func_name) ? std::string(err->func_name) + "()" : "";
  if (err->desc && *err->desc) {
    std::string desc = err->desc;
    // Some descriptions embed ctime() output, which ends in a newline.
    desc.erase(std::remove(desc.begin(), desc.end(), '\n'), desc.end());
    msg += (msg.empty() ? "" : ": ") + desc;
  }
  if (!msg.empty() && (messages->empty() || messages->back() != msg)) messages->push_back(std::move(msg));
  return 0;
}

}  // namespace

std::string h5_error_stack() {
  std::vector<std::string> messages;
  // Outermost (the API call the caller made) first, the root cause last.
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "HDF5 call failed (no HDF5 error message)";
  return join(messages, "; ");
}

void throw_h5_error(const std::string& context) {
  SEMSKIP_THROW_MSG("{}: {}", context, h5_error_stack());
}

QuietHdf5Errors::QuietHdf5Errors() {
  if (H5Eget_auto2(H5E_DEFAULT, &func_, &data_) >= 0) {
    saved_ = true;
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
}

QuietHdf5Errors::~QuietHdf5Errors() {
  if (saved_) H5Eset_auto2(H5E_DEFAULT, func_, data_);
}

H5Id& H5Id::operator=(H5Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = H5I_INVALID_HID;
}

H5Id vlen_utf8_type() {
  H5Id t = h5_own(H5Tcopy(H5T_C_S1), H5Tclose, "creating a string type");
  h5_check(H5Tset_size(t.get(), H5T_VARIABLE), "creating a string type");
  h5_check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "creating a string type");
  return t;
}

bool h5_path_exists(hid_t file, const std::string& path, const std::string& context) {
  std::string prefix;
  std::vector<std::string> parts = split(path, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) continue;
    prefix += "/" + parts[i];
    htri_t exists = h5_check(H5Lexists(file, prefix.c_str(), H5P_DEFAULT), context);
    if (!exists) return false;
    if (i + 1 < parts.size()) {
      // Below a dataset there is nothing, and H5Lexists would fail rather than say so.
      H5Id obj = h5_own(H5Oopen(file, prefix.c_str(), H5P_DEFAULT), H5Oclose, context);
      if (H5Iget_type(obj.get()) != H5I_GROUP) return false;
    }
  }
  return true;
}

std::string utf8_problem(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c == 0) return fmt::format("contains a NUL byte at offset {}", i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return fmt::format("not valid UTF-8 (byte 0x{:02x} at offset {})", c, i);
    }
    if (i + len > n) return fmt::format("not valid UTF-8 (truncated sequence at offset {})", i);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return fmt::format("not valid UTF-8 (bad continuation byte at offset {})", i + k);
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Strict, as Python's decoder is: no overlong forms, no surrogates, nothing past U+10FFFF.
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return fmt::format("not valid UTF-8 (overlong form, surrogate or code point past U+10FFFF at offset {})", i);
    }
    i += len;
  }
  return {};
}

}  // namespace semskip::report::detail
