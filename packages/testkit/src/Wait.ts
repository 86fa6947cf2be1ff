/**
 * Polling waits for tests against real peers (real time): until a condition holds, or a handle reaches a status.
 *
 * @since 0.1.0
 */
import type { Lifecycle } from "@streamemit/core"
import * as Effect from "effect/Effect"

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
 * Waits until a connector handle's status is `tag`.
 *
 * @since 0.1.0
 * @category utils
 */
export const status = (
  handle: { readonly status: Effect.Effect<Lifecycle.Status> },
  tag: Lifecycle.Status["_tag"],
  timeoutMs = 5000
): Effect.Effect<void, Error> => until(() => Effect.runSync(handle.status)._tag === tag, `status ${tag}`, timeoutMs)
