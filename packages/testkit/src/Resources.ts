/**
 * What the process holds open — sockets, servers, timers — from `process.getActiveResourcesInfo()`, to prove that
 * a scope left nothing behind.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"

/**
 * Counts by resource kind (`TCPSocketWrap`, `Timeout`, `FSEventWrap`, …).
 *
 * @since 0.1.0
 * @category models
 */
export type Snapshot = Readonly<Record<string, number>>

/**
 * @since 0.1.0
 * @category constructors
 */
export const snapshot = (): Snapshot => {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

/** Kinds that say nothing about leaks: the process's own stdio, pending immediates, fs reads of loaders. */
const ignored = new Set([
  "TTYWrap",
  "PipeWrap",
  "Immediate",
  "FSReqCallback",
  "FSReqPromise",
  "ProcessWrap",
  "SignalWrap"
])

/**
 * The resources present now beyond `baseline`, by kind (empty when nothing leaked).
 *
 * @since 0.1.0
 * @category utils
 */
export const leaked = (baseline: Snapshot, now: Snapshot = snapshot()): Snapshot => {
  const extra: Record<string, number> = {}
  for (const [kind, count] of Object.entries(now)) {
    if (ignored.has(kind)) continue
    const over = count - (baseline[kind] ?? 0)
    if (over > 0) extra[kind] = over
  }
  return extra
}

/**
 * Waits (real time, up to `timeoutMs`) until nothing beyond `baseline` is held; fails naming what is left.
 * Sockets close a few event-loop turns after `destroy()`, hence the wait.
 *
 * @since 0.1.0
 * @category utils
 */
export const expectNoLeaks = (baseline: Snapshot, timeoutMs = 3000): Effect.Effect<void, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const extra = leaked(baseline)
      if (Object.keys(extra).length === 0) return
      if (Date.now() > deadline) {
        return yield* Effect.fail(new Error(`resources left behind: ${JSON.stringify(extra)}`))
      }
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
  })
