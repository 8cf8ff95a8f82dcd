// Package rollout owns Test and Deploy's decisions: which exact versions a
// rollout installs (a frozen PatchSet, the same in every ring), on which
// hosts and in which order (rings of hosts chosen by labels, waves bounded
// by a concurrency, a failure budget, a soak time before promotion), and
// when (recurring maintenance windows in the hosts' time zones).
//
// It is pure: Freeze, New and Step take data and the clock and return
// data. The server persists State, turns Step's actions into agent jobs
// keyed by their idempotency Key, and feeds job results and operator
// commands back as Events; the agent runs the jobs with internal/apply.
// See docs/rollout.md.
package rollout
