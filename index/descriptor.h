#pragma once
// Index descriptors (docs/conventions.md rule 9): "<backend>:<body>[|<key>=<value>]…", for example
// "faiss:IVF1024,Flat|nprobe=16", "torch:flat|device=cuda". The text is kept verbatim, so
// describe() gives back exactly what make_index() was given and it can key report rows.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace semskip {

class IndexDescriptor {
 public:
  // Splits the descriptor; semskip::Error naming it when it is malformed (no backend, empty
  // body, a parameter without '=', an empty key or value, a repeated key, whitespace).
  static IndexDescriptor parse(const std::string& text);

  const std::string& text() const { return text_; }
  const std::string& backend() const { return backend_; }  // "faiss"
  const std::string& body() const { return body_; }        // "IVF1024,Flat"

  // Removes parameter `key` and returns its value; nullopt when absent.
  std::optional<std::string> take(const std::string& key);
  // As take(), parsed as an integer ≥ min_value; `fallback` when absent.
  int64_t take_int(const std::string& key, int64_t fallback, int64_t min_value);
  // Parameters not yet taken, in the order written.
  const std::vector<std::pair<std::string, std::string>>& remaining() const { return params_; }
  // semskip::Error naming the first parameter not taken and the accepted ones.
  void check_all_taken(const std::string& accepted) const;

 private:
  std::string text_;
  std::string backend_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> params_;
};

}  // namespace semskip
