/**
 * The connector conformance suite: the rules every StreamEmit connector keeps, run against a real source behind a
 * `FaultProxy`. A connector's tests call `run(harness)` once; the suite registers its tests with vitest.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import type { Connector, ConnectorError } from "@streamemit/core"
import { Lifecycle, Metrics } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as FaultProxy from "./FaultProxy.ts"
import * as Resources from "./Resources.ts"
import * as Wait from "./Wait.ts"

/**
 * A running source, reached through `proxy`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fixture<Item> {
  readonly proxy: FaultProxy.FaultProxy
  /** The connector's handle, connected through the proxy, with these common options merged in. */
  readonly handle: (
    options: Connector.CommonOptions<Item>
  ) => Effect.Effect<Connector.Handle<unknown, Item>, ConnectorError.ConnectorError, Scope.Scope>
  /** Makes the source send messages carrying the numbers `from` … `from + count - 1`, in order. */
  readonly send: (from: number, count: number) => Effect.Effect<void, unknown>
  /** The number a message carries. */
  readonly numberOf: (item: Item) => number
  /** Sessions the server holds open now (0 once our client is gone). */
  readonly serverSessions: Effect.Effect<number, unknown>
  /** A handle whose first connection fails with a non-retryable error (bad credentials, 4xx, …). */
  readonly nonRetryable: (
    options: Connector.CommonOptions<Item>
  ) => Effect.Effect<Connector.Handle<unknown, Item>, ConnectorError.ConnectorError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Harness<Item> {
  /** The connector's name, as in its errors and metrics. */
  readonly connector: string
  /** Starts a fresh source and proxy for one test. */
  readonly fixture: Effect.Effect<Fixture<Item>, unknown, Scope.Scope>
  /**
   * Whether the source can be paused (the `"suspend"` strategy is lossless end to end), and how many messages it
   * may still deliver once asked to pause (what it had read already): the hard cap must leave room for them.
   */
  readonly pausable: false | { readonly burstAfterPause: number }
  /** Whether the connector reconnects at all (a file watcher does not). */
  readonly reconnects: boolean
}

const fastReconnect = Schedule.spaced("50 millis")

let names = 0
const uniqueName = (label: string) => `conformance-${label}-${process.pid}-${++names}`

/**
 * Registers the conformance tests for `harness`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <Item>(harness: Harness<Item>): void => {
  describe(`conformance: ${harness.connector}`, () => {
    it.live("keeps the order of messages", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const handle = yield* fixture.handle({ name: uniqueName("order") })
        yield* Wait.status(handle, "Connected")
        const received = yield* handle.messages.pipe(Stream.take(1000), Stream.runCollect, Effect.forkChild)
        yield* fixture.send(1, 1000)
        const numbers = (yield* Fiber.join(received)).map(fixture.numberOf)
        assert.deepStrictEqual(
          numbers,
          Array.from({ length: 1000 }, (_, i) => i + 1)
        )
      }).pipe(Effect.scoped)
    )

    it.live("leaves nothing behind when the scope ends: client sockets, timers, server sessions", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const baseline = Resources.snapshot()
        yield* Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* fixture.handle({ name: uniqueName("cleanup") })
            yield* Wait.status(handle, "Connected")
            const received = yield* handle.messages.pipe(Stream.take(10), Stream.runCollect, Effect.forkChild)
            yield* fixture.send(1, 10)
            assert.strictEqual((yield* Fiber.join(received)).length, 10)
          })
        )
        yield* fixture.proxy.waitFor((s) => s.open === 0)
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(Effect.orDie(fixture.serverSessions), (n) => n === 0)),
          "the server to see no session of ours"
        )
        yield* Resources.expectNoLeaks(baseline)
      }).pipe(Effect.scoped)
    )

    it.live("interrupting while connecting releases everything", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const baseline = Resources.snapshot()
        // The proxy accepts TCP but forwards nothing: the handshake hangs.
        yield* fixture.proxy.blackhole
        yield* Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* fixture.handle({ name: uniqueName("interrupt") })
            yield* fixture.proxy.waitFor((s) => s.accepted >= 1)
            assert.strictEqual((yield* handle.status)._tag, "Connecting")
          })
        )
        yield* fixture.proxy.restore
        yield* fixture.proxy.waitFor((s) => s.open === 0)
        yield* Resources.expectNoLeaks(baseline)
      }).pipe(Effect.scoped)
    )

    it.live("a non-retryable error stops the stream at once", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const handle = yield* fixture.nonRetryable({ name: uniqueName("fatal"), reconnect: fastReconnect })
        const error = yield* handle.messages.pipe(Stream.runDrain, Effect.flip, Effect.timeout("5 seconds"))
        assert.isFalse(error.isRetryable, `expected a non-retryable error, got ${error.message}`)
        const status = yield* handle.status
        assert.strictEqual(status._tag, "Closed")
        // No second attempt followed.
        yield* Effect.sleep("200 millis")
        assert.isAtMost((yield* fixture.proxy.stats).accepted, 1)
      }).pipe(Effect.scoped)
    )

    it.live("metrics move: messages, connected", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const name = uniqueName("metrics")
        const metrics = Metrics.forConnector(harness.connector, name)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* fixture.handle({ name })
            yield* Wait.status(handle, "Connected")
            assert.strictEqual((yield* Metric.value(metrics.connected)).value, 1)
            const received = yield* handle.messages.pipe(Stream.take(20), Stream.runCollect, Effect.forkChild)
            yield* fixture.send(1, 20)
            yield* Fiber.join(received)
          })
        )
        assert.isAtLeast((yield* Metric.value(metrics.messages)).count, 20)
        assert.strictEqual((yield* Metric.value(metrics.connected)).value, 0)
      }).pipe(Effect.scoped)
    )

    it.live("bounded memory under a slow consumer", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const total = 20_000
        const overflow = harness.pausable
          ? ({ strategy: "suspend", bufferSize: 16, hardCap: 16 + harness.pausable.burstAfterPause } as const)
          : ({ strategy: "dropping", bufferSize: 16 } as const)
        const handle = yield* fixture.handle({ name: uniqueName("memory"), overflow })
        yield* Wait.status(handle, "Connected")
        let maxDepth = 0
        let seen = 0
        const consumer = yield* handle.messages.pipe(
          Stream.runForEach(() =>
            Effect.gen(function* () {
              seen++
              maxDepth = Math.max(maxDepth, (yield* handle.stats).depth)
              if (seen % 100 === 0) yield* Effect.sleep("1 millis")
            })
          ),
          Effect.forkChild
        )
        yield* fixture.send(1, total)
        if (harness.pausable) {
          yield* Wait.until(() => seen === total, `all ${total} messages (lossless under "suspend")`, 20_000)
        } else {
          yield* Wait.until(
            () => Effect.runPromise(Effect.map(handle.stats, (s) => s.delivered + s.dropped >= total)),
            "every message delivered or counted as dropped",
            20_000
          )
          // Messages only: lifecycle events are neither delivered messages nor drops.
          const stats = yield* handle.stats
          assert.strictEqual(stats.delivered + stats.dropped, total, "received = delivered + dropped, exactly")
        }
        yield* Fiber.interrupt(consumer)
        assert.isAtMost(maxDepth, overflow.strategy === "suspend" ? overflow.hardCap : overflow.bufferSize)
        if (harness.pausable) assert.isAbove((yield* handle.stats).pauses, 0, "the slow consumer paused the source")
      }).pipe(Effect.scoped)
    )

    if (!harness.reconnects) return

    it.live("reconnects after a reset, with lifecycle events in order and a Gap between the messages", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        const handle = yield* fixture.handle({ name: uniqueName("reconnect"), reconnect: fastReconnect })
        const signals: Array<Lifecycle.Signal<Item>> = []
        yield* handle.signals.pipe(
          Stream.runForEach((s) => Effect.sync(() => signals.push(s))),
          Effect.forkChild({ startImmediately: true })
        )
        yield* Wait.status(handle, "Connected")
        yield* fixture.send(1, 5)
        yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 5, "5 messages")
        yield* fixture.proxy.reset
        yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap after the reconnect")
        yield* Wait.status(handle, "Connected")
        yield* fixture.send(6, 5)
        yield* Wait.until(() => signals.filter((s) => s._tag === "Message").length === 10, "5 more messages")
        const tags = signals.map((s) => s._tag)
        const firstGap = tags.indexOf("Gap")
        assert.deepStrictEqual(tags.slice(0, 2), ["Connecting", "Connected"])
        assert.deepStrictEqual(tags.slice(2, 7), ["Message", "Message", "Message", "Message", "Message"])
        assert.strictEqual(tags[7], "Disconnected")
        // Possibly several failed attempts, then a connection, its Gap, then the new messages.
        assert.deepStrictEqual(tags.slice(firstGap - 2, firstGap + 1), ["Connecting", "Connected", "Gap"])
        const numbers = signals.flatMap((s) => (s._tag === "Message" ? [fixture.numberOf(s.message)] : []))
        assert.deepStrictEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        const gap = signals[firstGap] as Lifecycle.Gap
        assert.include(["resumed", "possible-loss"], gap.delivery)
        assert.isTrue(Duration.isGreaterThanOrEqualTo(gap.downtime, Duration.zero))
        const disconnected = signals[7] as Lifecycle.Disconnected
        assert.isDefined(disconnected.retryIn)
        assert.isTrue(Lifecycle.isEvent(disconnected))
      }).pipe(Effect.scoped)
    )

    it.live("refused connections are retried with backoff until the source is back", () =>
      Effect.gen(function* () {
        const fixture = yield* harness.fixture
        yield* fixture.proxy.refuse
        const handle = yield* fixture.handle({ name: uniqueName("refuse"), reconnect: fastReconnect })
        const events: Array<Lifecycle.Event> = []
        yield* handle.events.pipe(
          Stream.runForEach((e) => Effect.sync(() => events.push(e))),
          Effect.forkChild({ startImmediately: true })
        )
        yield* Wait.until(() => events.filter((e) => e._tag === "Disconnected").length >= 3, "3 failed attempts")
        assert.notInclude(
          events.map((e) => e._tag),
          "Connected"
        )
        yield* fixture.proxy.restore
        yield* Wait.status(handle, "Connected")
        const received = yield* handle.messages.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
        yield* fixture.send(1, 3)
        assert.deepStrictEqual((yield* Fiber.join(received)).map(fixture.numberOf), [1, 2, 3])
      }).pipe(Effect.scoped)
    )
  })
}
