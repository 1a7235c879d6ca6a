#pragma once
// One failing rank must never leave the others hanging in a collective (docs/architecture.md §4,
// docs/conventions.md rule 10): main catches what a command throws and hands it here.

#include <exception>
#include <string>

namespace semskip {

// Prints "semskip <command>: rank R/N (host): error: <what>" to stderr ("semskip <command>:
// error: <what>" in a single-process run) and, when MPI runs with more than one rank, ends
// every rank of the job with MPI_Abort (does not return). Otherwise returns the exit status 1.
int handle_command_failure(const std::string& command, const std::exception& e);

}  // namespace semskip
