/**
 * Waits for tests against real peers (real time): until a condition holds (polled), or a handle reaches a status
 * (followed, not polled).
 *
 * @since 0.1.0
 */
import type { Lifecycle } from "@streamemit/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/**
 * Polls `predicate` every 5 ms until it holds; fails naming `what` after `timeoutMs`.
 *
 * @since 0.1.0
 * @category utils
 */
export const until = (
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000
): Effect.Effect<void, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!(yield* Effect.promise(async () => predicate()))) {
      if (Date.now() > deadline)
        return yield* Effect.fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
  })

/**
 * Waits until a connector handle's status is `tag` now: every change on `handle.statusChanges` (the status at
 * subscription, then each change) triggers a look at `handle.status`, so nothing is polled and a stale event
 * (the status moved on before it was read) does not count. Fails naming the last status after `timeoutMs`.
 *
 * @since 0.1.0
 * @category utils
 */
export const status = (
  handle: {
    readonly status: Effect.Effect<Lifecycle.Status>
    readonly statusChanges: Stream.Stream<Lifecycle.Status>
  },
  tag: Lifecycle.Status["_tag"],
  timeoutMs = 5000
): Effect.Effect<void, Error> =>
  Effect.suspend(() => {
    let last = "none"
    return handle.statusChanges.pipe(
      Stream.mapEffect(() => handle.status),
      Stream.tap((status) =>
        Effect.sync(() => {
          last = status._tag
        })
      ),
      Stream.filter((status) => status._tag === tag),
      Stream.runHead,
      Effect.asVoid,
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () =>
          Effect.fail(new Error(`timed out after ${timeoutMs} ms waiting for status ${tag} (last: ${last})`))
      })
    )
  })
