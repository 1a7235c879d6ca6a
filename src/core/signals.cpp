#include "core/signals.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <initializer_list>

#include <unistd.h>

namespace semskip {

namespace {

std::atomic<int> g_stop_signal{0};
// Written only outside the handler while g_inflight_ready is false, read by the handler.
char g_inflight_path[4096];
std::atomic<bool> g_inflight_ready{false};
std::atomic<bool> g_installed{false};

static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be lock-free to be set in a handler");
static_assert(std::atomic<bool>::is_always_lock_free, "the temp-file flag must be lock-free");

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (g_stop_signal.compare_exchange_strong(expected, sig)) return;  // first signal: finish the step
  // Second signal: end now. The half-written temporary file goes; nothing else is touched.
  if (g_inflight_ready.load()) unlink(g_inflight_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void install_stop_handlers() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking calls continue; the flag is polled between steps
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

bool stop_requested() { return g_stop_signal.load() != 0; }

int stop_signal() { return g_stop_signal.load(); }

void request_stop(int sig) {
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, sig);
}

void set_inflight_temp(const char* path) {
  g_inflight_ready.store(false);
  if (path == nullptr || std::strlen(path) >= sizeof g_inflight_path) return;
  std::strcpy(g_inflight_path, path);
  g_inflight_ready.store(true);
}

}  // namespace semskip
