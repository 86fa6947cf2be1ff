/**
 * Assertions about connector outcomes, shared by connector test suites.
 *
 * @since 0.1.0
 */
import { assert } from "@effect/vitest"
import type { Connector, ConnectorError, Lifecycle } from "@streamemit/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as FaultProxy from "./FaultProxy.ts"
import * as Wait from "./Wait.ts"

/**
 * The typed `ConnectorError` an exit failed with; fails the test when the exit succeeded or died.
 *
 * @since 0.1.0
 * @category assertions
 */
export const connectorError = (
  exit: Exit.Exit<unknown, ConnectorError.ConnectorError>
): ConnectorError.ConnectorError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const failure = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons.find(
    (reason) => reason._tag === "Fail"
  ) as { readonly error: ConnectorError.ConnectorError } | undefined
  assert.isDefined(failure, "expected a typed failure, not a defect or an interruption")
  return failure!.error
}

/**
 * The liveness rule against a black hole: a connected `handle` stays up while quiet for `quietFor` (its probes are
 * answered), then, once `proxy` forwards nothing, reports `Disconnected` with a `Timeout` within `withinMillis`;
 * after `proxy.restore` it connects again.
 *
 * @since 0.1.0
 * @category assertions
 */
export const blackholeDetected = (
  handle: Connector.Handle<unknown, unknown>,
  proxy: FaultProxy.FaultProxy,
  options: { readonly quietFor: Duration.Input; readonly withinMillis: number }
): Effect.Effect<void, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const events: Array<Lifecycle.Event> = []
    yield* handle.events.pipe(
      Stream.runForEach((e) => Effect.sync(() => events.push(e))),
      Effect.forkScoped({ startImmediately: true })
    )
    yield* Wait.status(handle, "Connected")
    yield* Effect.sleep(options.quietFor)
    assert.notInclude(
      events.map((e) => e._tag),
      "Disconnected",
      "a quiet healthy connection answers its probes"
    )
    yield* proxy.blackhole
    const start = Date.now()
    yield* Wait.until(() => events.some((e) => e._tag === "Disconnected"), "the probe to fail", 3000)
    assert.isAtMost(Date.now() - start, options.withinMillis, "detected within interval + timeout")
    const disconnected = events.find((e): e is Lifecycle.Disconnected => e._tag === "Disconnected")
    assert.strictEqual(disconnected?.error.reason._tag, "Timeout")
    yield* proxy.restore
    yield* Wait.until(() => events.filter((e) => e._tag === "Connected").length === 2, "a new connection")
  })
