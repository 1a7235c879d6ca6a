#pragma once
// Interruption of a long run by signal (SIGTERM, SIGINT, SIGUSR1: what a shell, a user and
// sbatch --signal send). The first signal only asks to stop: the handler sets a flag that the
// run polls at its step boundaries, so the step in flight finishes and what is complete is
// written. A second signal ends the process at once with the default action of that signal:
// the handler removes the temporary file being written (if one was registered), restores the
// default disposition and re-raises, so no earlier output is touched. Everything the handler
// does is async-signal-safe (a lock-free atomic store, unlink, signal, raise).

namespace semskip {

// The exit status of a run that stopped on request and left a partial result behind
// (EX_TEMPFAIL of sysexits.h: try again, here with `semskip run --resume`).
inline constexpr int kExitInterrupted = 75;

// Installs the handlers for SIGTERM, SIGINT and SIGUSR1 (idempotent).
void install_stop_handlers();
// Whether a stop was requested (by a signal or request_stop()).
bool stop_requested();
// The signal that asked to stop, 0 when none did (request_stop() records `sig`).
int stop_signal();
// Asks to stop as a first signal would.
void request_stop(int sig);

// The temporary file being written now, removed by a second signal; nullptr clears it. The
// path is copied into a fixed buffer (at most 4095 bytes; longer paths are not registered).
void set_inflight_temp(const char* path);

}  // namespace semskip
