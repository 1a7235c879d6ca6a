// `--model org/name[@revision]` found in a fake Hugging Face hub cache laid out as the hub
// lays it out: blobs, snapshot files that are symlinks to them, refs naming the commit.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/hf_cache.h"

namespace semskip {
namespace {

namespace fs = std::filesystem;

struct FakeHub {
  fs::path root;
  FakeHub() {
    root = fs::temp_directory_path() / ("semskip_hf_cache_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~FakeHub() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  // models--<org>--<name>/{blobs,snapshots/<commit>,refs/<ref>}; config.json a relative symlink.
  fs::path add(const std::string& org, const std::string& name, const std::string& commit,
               const std::string& ref, bool with_config = true) {
    const fs::path repo = root / ("models--" + org + "--" + name);
    fs::create_directories(repo / "blobs");
    fs::create_directories(repo / "snapshots" / commit);
    if (!ref.empty()) {
      fs::create_directories(repo / "refs");
      std::ofstream(repo / "refs" / ref) << commit;  // the hub writes it without a newline
    }
    if (with_config) {
      std::ofstream(repo / "blobs" / ("cfg" + commit)) << R"({"model_type":"qwen2"})";
      fs::create_symlink(fs::path("..") / ".." / "blobs" / ("cfg" + commit),
                         repo / "snapshots" / commit / "config.json");
    }
    return repo / "snapshots" / commit;
  }
};

std::string error_of(const std::string& id, const std::string& cache) {
  try {
    resolve_hf_snapshot(id, cache);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(HfCache, LooksLikeAnId) {
  EXPECT_TRUE(looks_like_hf_id("Qwen/Qwen2-0.5B"));
  EXPECT_TRUE(looks_like_hf_id("Qwen/Qwen2-0.5B@v1.0"));
  EXPECT_TRUE(looks_like_hf_id("meta-llama/Llama-3.2-1B@0123abcd"));
  EXPECT_FALSE(looks_like_hf_id("tiny-dense"));
  EXPECT_FALSE(looks_like_hf_id("/abs/path"));
  EXPECT_FALSE(looks_like_hf_id("a/b/c"));
  EXPECT_FALSE(looks_like_hf_id("../x"));
  EXPECT_FALSE(looks_like_hf_id("org/"));
  EXPECT_FALSE(looks_like_hf_id("org/name@"));
  EXPECT_FALSE(looks_like_hf_id(""));
}

TEST(HfCache, ResolvesMainAndNamedRefsAndCommits) {
  FakeHub hub;
  const fs::path main_snap = hub.add("Qwen", "Qwen2-0.5B", "aaaa1111", "main");
  const fs::path tag_snap = hub.add("Qwen", "Qwen2-0.5B", "bbbb2222", "v1.0");
  const std::string cache = hub.root.string();
  EXPECT_EQ(resolve_hf_snapshot("Qwen/Qwen2-0.5B", cache), main_snap.string());
  EXPECT_EQ(resolve_hf_snapshot("Qwen/Qwen2-0.5B@v1.0", cache), tag_snap.string());
  EXPECT_EQ(resolve_hf_snapshot("Qwen/Qwen2-0.5B@bbbb2222", cache), tag_snap.string());
  // The snapshot's config.json is the blob, reached through the symlink.
  std::ifstream in(fs::path(resolve_hf_snapshot("Qwen/Qwen2-0.5B", cache)) / "config.json");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, R"({"model_type":"qwen2"})");
}

TEST(HfCache, ErrorsListWhereItLooked) {
  FakeHub hub;
  hub.add("Qwen", "Qwen2-0.5B", "aaaa1111", "main");
  hub.add("org", "partial", "cccc3333", "main", /*with_config=*/false);
  const std::string cache = hub.root.string();
  std::string msg = error_of("Qwen/Missing", cache);
  EXPECT_NE(msg.find("model 'Qwen/Missing': not in the local cache"), std::string::npos) << msg;
  EXPECT_NE(msg.find((hub.root / "models--Qwen--Missing" / "refs" / "main").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_HUB_CACHE"), std::string::npos) << msg;
  msg = error_of("Qwen/Qwen2-0.5B@v9", cache);
  EXPECT_NE(msg.find("revision 'v9' has no snapshot folder"), std::string::npos) << msg;
  msg = error_of("org/partial", cache);
  EXPECT_NE(msg.find("has no config.json"), std::string::npos) << msg;
}

struct EnvGuard {
  std::string name;
  std::string old;
  bool had;
  explicit EnvGuard(const char* n) : name(n), had(std::getenv(n) != nullptr) {
    if (had) old = std::getenv(n);
  }
  ~EnvGuard() {
    if (had) {
      ::setenv(name.c_str(), old.c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
};

TEST(HfCache, CacheFolderFromTheEnvironment) {
  EnvGuard a("HF_HUB_CACHE"), b("HF_HOME"), c("HOME");
  ::setenv("HOME", "/home/u", 1);
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HF_HOME");
  EXPECT_EQ(hf_hub_cache_dir(), "/home/u/.cache/huggingface/hub");
  ::setenv("HF_HOME", "/data/hf", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/data/hf/hub");
  ::setenv("HF_HUB_CACHE", "/fast/hub", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/fast/hub");
}

TEST(HfCache, ModelArgumentResolution) {
  EnvGuard a("HF_HUB_CACHE");
  FakeHub hub;
  const fs::path snap = hub.add("Qwen", "Qwen2-0.5B", "aaaa1111", "main");
  ::setenv("HF_HUB_CACHE", hub.root.string().c_str(), 1);
  EXPECT_EQ(resolve_model_arg("Qwen/Qwen2-0.5B"), snap.string());
  // An existing folder wins over an id of the same spelling.
  const fs::path cwd = fs::current_path();
  fs::create_directories(hub.root / "work" / "Qwen" / "Qwen2-0.5B");
  fs::current_path(hub.root / "work");
  EXPECT_EQ(resolve_model_arg("Qwen/Qwen2-0.5B"), "Qwen/Qwen2-0.5B");
  fs::current_path(cwd);
  // Not an id: given back for the loader to name.
  EXPECT_EQ(resolve_model_arg("no-such-folder"), "no-such-folder");
  EXPECT_EQ(resolve_model_arg(""), "");
  try {
    resolve_model_arg("Qwen/Unknown");
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--model 'Qwen/Unknown': no such folder, and as a Hugging Face id: model 'Qwen/Unknown': "
                       "not in the local cache"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find(hub.root.string()), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace semskip
