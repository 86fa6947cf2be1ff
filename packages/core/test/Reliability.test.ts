/**
 * Nothing lost without a count, under the faults a demanding user meets: a consumer slower than the liveness
 * watchdog, a long resync with live traffic arriving meanwhile, a sliding buffer behind a flood, a subscriber
 * to the out-of-band events that reads late, a defect in `onResync`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Schedule, Stream, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { Connector, Lifecycle } from "../src/index.ts"
import { collectSignals, connectError, options, type Script, scripted, tags, up } from "./Scripted.ts"

/**
 * A source that honours flow control, as a socket does: it emits `total` numbers from `from`, stops while paused
 * and goes on (in a microtask, as a socket's next read) once resumed. `state.pauses` counts the pauses it obeyed.
 */
const pausableSource = (total: number, from = 0) => {
  const state: { sent: number; pauses: number; paused: boolean; run?: () => void } = {
    sent: 0,
    pauses: 0,
    paused: false
  }
  const script: Script = (session) =>
    Effect.sync(() => {
      const run = () => {
        while (state.sent < total && !state.paused) session.emit(from + state.sent++)
      }
      session.flowControl({
        pause: () => {
          state.paused = true
          state.pauses++
        },
        resume: () => {
          state.paused = false
          queueMicrotask(run)
        }
      })
      state.run = run
      return "conn"
    })
  return { state, script }
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)

describe("the watchdog and a slow consumer", () => {
  it.effect("a source paused by a full buffer is not probed and not declared dead, however long the stall", () =>
    Effect.gen(function* () {
      let probes = 0
      const source = pausableSource(100)
      const { driver } = scripted([source.script], {
        probe: () => Effect.sync(() => void probes++)
      })
      const handle = yield* Connector.make(
        driver,
        yield* options({
          liveness: { interval: "1 second", timeout: "1 second" },
          overflow: { strategy: "suspend", bufferSize: 10 }
        })
      )
      yield* Effect.yieldNow
      source.state.run!()
      assert.strictEqual(source.state.paused, true, "the buffer of 10 paused the source")
      // The consumer stalls for ten minutes: the silence is ours.
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(probes, 0, "no probe while paused (a paused socket cannot read the answer)")
      assert.strictEqual((yield* handle.status)._tag, "Connected")
      const all = yield* handle.messages.pipe(Stream.take(100), Stream.runCollect)
      assert.deepStrictEqual(all, range(0, 100))
      assert.strictEqual((yield* handle.stats).reconnects, 0)
      // Live again and silent: now the watchdog probes.
      yield* TestClock.adjust("2 seconds")
      assert.isAbove(probes, 0)
    })
  )

  it.effect("the idle timer does not count time paused by the buffer; after the resume it counts again", () =>
    Effect.gen(function* () {
      const source = pausableSource(20)
      const { driver } = scripted([source.script])
      const handle = yield* Connector.make(
        driver,
        yield* options({ liveness: { timeout: "10 seconds" }, overflow: { strategy: "suspend", bufferSize: 5 } })
      )
      yield* Effect.yieldNow
      source.state.run!()
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* handle.status, new Lifecycle.Connected({ attempt: 1 }))
      const all = yield* handle.messages.pipe(Stream.take(20), Stream.runCollect)
      assert.deepStrictEqual(all, range(0, 20))
      assert.strictEqual((yield* handle.stats).reconnects, 0)
      // Silence after the resume is the peer's: stalled at the timeout exactly (traffic is stamped).
      yield* TestClock.adjust("9900 millis")
      assert.deepStrictEqual(yield* handle.status, new Lifecycle.Connected({ attempt: 1 }))
      yield* TestClock.adjust("200 millis")
      assert.strictEqual((yield* handle.status)._tag, "Disconnected")
    })
  )

  it.effect("the connect timeout does not count time the consumer holds an ungated source paused", () =>
    Effect.gen(function* () {
      const ready = yield* Deferred.make<void>()
      const source = pausableSource(50)
      const { driver } = scripted(
        [
          (session) =>
            Effect.andThen(source.script(session), () => {
              source.state.run!()
              return Effect.as(Deferred.await(ready), "conn")
            })
        ],
        { ungated: true }
      )
      const handle = yield* Connector.make(
        driver,
        yield* options({ connectTimeout: "5 seconds", overflow: { strategy: "suspend", bufferSize: 10 } })
      )
      yield* Effect.yieldNow
      assert.isTrue(source.state.paused)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* handle.status, new Lifecycle.Connecting({ attempt: 1 }))
      const first = yield* handle.messages.pipe(Stream.take(50), Stream.runCollect)
      assert.deepStrictEqual(first, range(0, 50))
      yield* Deferred.succeed(ready, undefined)
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* handle.status, new Lifecycle.Connected({ attempt: 1 }))
    })
  )
})

describe('"suspend" and large batches', () => {
  it.effect("a batch a pausable source read before the pause is taken whole; the hard cap counts from there", () =>
    Effect.gen(function* () {
      const pauses: Array<string> = []
      const { driver, sessions } = scripted([
        (session) =>
          Effect.sync(() => {
            session.flowControl({ pause: () => pauses.push("pause"), resume: () => pauses.push("resume") })
            return "conn"
          })
      ])
      const handle = yield* Connector.make(
        driver,
        yield* options({ reconnect: false, overflow: { strategy: "suspend", bufferSize: 10, hardCap: 20 } })
      )
      yield* Effect.yieldNow
      // One HTTP body chunk after a stall: 1,000 records at once, far past the hard cap of 20.
      assert.isTrue(sessions[0].emitAll(range(0, 1000)))
      assert.deepStrictEqual(pauses, ["pause"])
      // After the pause was asked for, 10 more fit (hard cap 20 − buffer 10), the next one is an overflow.
      assert.isTrue(sessions[0].emitAll(range(1000, 10)))
      assert.strictEqual((yield* handle.status)._tag, "Connected")
      sessions[0].emit(1010)
      const error = yield* Effect.flip(handle.messages.pipe(Stream.runCollect))
      assert.strictEqual(error.reason._tag, "Overflow")
    })
  )

  it.effect("a source that cannot pause is held to the hard cap, whatever the size of its batches", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up])
      const handle = yield* Connector.make(
        driver,
        yield* options({ reconnect: false, overflow: { strategy: "suspend", bufferSize: 10, hardCap: 20 } })
      )
      yield* Effect.yieldNow
      sessions[0].emitAll(range(0, 1000))
      const exit = yield* Effect.exit(handle.messages.pipe(Stream.runCollect))
      assert.isTrue(exit._tag === "Failure")
      assert.isAtMost((yield* handle.stats).delivered, 20)
    })
  )
})

describe("a long resync obeys the overflow policy", () => {
  it.effect('"suspend": live messages during a slow onResync pause the source; nothing fails, nothing is lost', () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const live = pausableSource(30_000, 1_000_000)
      const { driver, sessions } = scripted([
        up,
        (session) =>
          Effect.andThen(live.script(session), () => {
            live.state.run!()
            return Effect.succeed("conn")
          })
      ])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          overflow: { strategy: "suspend", bufferSize: 1024, hardCap: 2048 },
          onResync: () => Effect.as(Deferred.await(release), [1, 2, 3])
        })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      assert.isTrue(live.state.paused, "30,000 NOTIFYs during the resync: the source is paused at the buffer size")
      assert.strictEqual(live.state.sent, 1024)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* handle.status)._tag, "Connected", "no Overflow: a held source is paused, not failed")
      yield* Deferred.succeed(release, undefined)
      const all = yield* handle.messages.pipe(Stream.take(3 + 30_000), Stream.runCollect)
      assert.deepStrictEqual(all.slice(0, 3), [1, 2, 3], "the replay first")
      assert.deepStrictEqual(all.slice(3), range(1_000_000, 30_000), "then every live message, in order")
      assert.strictEqual((yield* handle.stats).dropped, 0)
    })
  )

  it.effect('"suspend": a replay far larger than the buffer is delivered in full, in order, before live traffic', () =>
    Effect.gen(function* () {
      const rows = range(0, 30_000)
      const { driver, sessions } = scripted([
        up,
        (session) =>
          Effect.sync(() => {
            session.emit(-1)
            return "conn"
          })
      ])
      let deepest = 0
      const handle = yield* Connector.make(
        driver,
        yield* options({
          overflow: { strategy: "suspend", bufferSize: 1024 },
          onResync: () => Effect.succeed(rows)
        })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      const all = yield* handle.messages.pipe(
        Stream.tap(() =>
          Effect.map(handle.stats, (stats) => {
            deepest = Math.max(deepest, stats.depth)
          })
        ),
        Stream.take(30_001),
        Stream.runCollect
      )
      assert.deepStrictEqual(all, [...rows, -1])
      // The replay is pulled as the consumer takes: the buffer holds at most its size, plus the one live message
      // waiting behind the gate.
      assert.isAtMost(deepest, 1025)
      assert.strictEqual((yield* handle.status)._tag, "Connected")
    })
  )

  it.effect('"dropping": messages held during the resync are dropped and counted past the buffer, not failed', () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const { driver, sessions } = scripted([
        up,
        (session) =>
          Effect.sync(() => {
            for (let i = 0; i < 100; i++) session.emit(i)
            return "conn"
          })
      ])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          overflow: { strategy: "dropping", bufferSize: 10 },
          onResync: () => Effect.as(Deferred.await(release), [])
        })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      yield* Deferred.succeed(release, undefined)
      const first = yield* handle.messages.pipe(Stream.take(10), Stream.runCollect)
      assert.deepStrictEqual(first, range(0, 10), "the newest are dropped")
      const stats = yield* handle.stats
      assert.strictEqual(stats.dropped, 90)
      assert.strictEqual((yield* handle.status)._tag, "Connected")
    })
  )

  it.effect('"sliding": a replay larger than the buffer keeps its newest rows, drops counted', () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          overflow: { strategy: "sliding", bufferSize: 10 },
          onResync: () => Effect.succeed(range(0, 50))
        })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      const kept = yield* handle.messages.pipe(Stream.take(10), Stream.runCollect)
      assert.deepStrictEqual(kept, range(40, 10))
      assert.strictEqual((yield* handle.stats).dropped, 40)
    })
  )
})

describe("lifecycle events are never lost and never counted as messages", () => {
  it.effect('"sliding" evicts messages only: every event of a flood and an outage reaches the consumer', () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up])
      const handle = yield* Connector.make(driver, yield* options({ overflow: { strategy: "sliding", bufferSize: 4 } }))
      yield* Effect.yieldNow
      for (let i = 0; i < 100; i++) sessions[0].emit(i)
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      for (let i = 100; i < 200; i++) sessions[1].emit(i)
      const signals = yield* collectSignals(handle, 6 + 4).pipe(Effect.flatMap(Fiber.join))
      assert.deepStrictEqual(tags(signals), [
        "Connecting",
        "Connected",
        "Disconnected",
        "Connecting",
        "Connected",
        "Gap",
        "m196",
        "m197",
        "m198",
        "m199"
      ])
      const stats = yield* handle.stats
      assert.strictEqual(stats.dropped, 196, "every message but the last 4; no event counted as dropped")
      assert.strictEqual(stats.delivered, 4)
    })
  )

  it.effect("stats: delivered counts messages only, so received = delivered + dropped", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up])
      const handle = yield* Connector.make(driver, yield* options())
      yield* Effect.yieldNow
      for (let i = 0; i < 10; i++) sessions[0].emit(i)
      sessions[0].end()
      const signals = yield* handle.signals.pipe(Stream.runCollect)
      assert.strictEqual(signals.length, 13, "Connecting, Connected, 10 messages, Closed")
      const stats = yield* handle.stats
      assert.strictEqual(stats.delivered, 10)
      assert.strictEqual(stats.dropped, 0)
    })
  )

  it.effect("events: a subscriber right after make starts with the current status (the first attempt)", () =>
    Effect.gen(function* () {
      const { driver } = scripted([() => Effect.never])
      const handle = yield* Connector.make(driver, yield* options())
      const first = yield* handle.events.pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(
        first.map((e) => [e._tag, (e as Lifecycle.Connecting).attempt]),
        [["Connecting", 1]]
      )
    })
  )

  it.effect("events: a subscriber that reads late misses none of thousands of events", () =>
    Effect.gen(function* () {
      const { driver } = scripted([() => Effect.fail(connectError("refused"))])
      const handle = yield* Connector.make(
        driver,
        yield* options({ reconnect: Schedule.spaced("1 second"), connectTimeout: "1 hour" })
      )
      const reading = yield* Deferred.make<void>()
      const fiber = yield* handle.events.pipe(
        Stream.tap(() => Deferred.await(reading)),
        Stream.take(3001),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      // The subscriber holds its first event while 1,500 attempts fail (3,000 events), then reads.
      yield* TestClock.adjust("1500 seconds")
      yield* Deferred.succeed(reading, undefined)
      const events = yield* Fiber.join(fiber)
      assert.strictEqual(events.length, 3001)
      const attempts = events.filter((e) => e._tag === "Connecting").map((e) => (e as Lifecycle.Connecting).attempt)
      // The first attempt failed within make: the subscriber starts from that status, Disconnected of attempt 1.
      assert.strictEqual(events[0]._tag, "Disconnected")
      assert.deepStrictEqual(attempts, range(2, attempts.length), "no attempt missing")
    })
  )
})

describe("statusChanges", () => {
  it.effect("the status now, then every change, without Gap: a wait that cannot miss a short-lived state", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, () => Effect.fail(connectError("refused")), up])
      const handle = yield* Connector.make(driver, yield* options())
      const fiber = yield* handle.statusChanges.pipe(Stream.take(6), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const statuses = (yield* Fiber.join(fiber)).map((s) => `${s._tag}${"attempt" in s ? s.attempt : ""}`)
      // The Gap after Connected3 is not a status.
      assert.deepStrictEqual(statuses, [
        "Connected1",
        "Disconnected1",
        "Connecting2",
        "Disconnected2",
        "Connecting3",
        "Connected3"
      ])
    })
  )
})

describe("onResync failures", () => {
  it.effect("a defect in onResync: Disconnected and Closed are published, the stream fails with the defect", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          onResync: () =>
            Effect.sync(() => {
              throw new Error("outbox query bug")
            })
        })
      )
      const events: Array<Lifecycle.Event> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      const status = yield* handle.status
      assert.strictEqual(status._tag, "Closed")
      assert.include((status as Lifecycle.Closed).error!.message, "outbox query bug")
      assert.strictEqual((status as Lifecycle.Closed).error!.reason._tag, "Unknown")
      assert.isFalse((status as Lifecycle.Closed).error!.isRetryable)
      assert.deepStrictEqual(events.map((e) => e._tag).slice(-3), ["Gap", "Disconnected", "Closed"])
      const exit = yield* Effect.exit(Stream.runDrain(handle.messages))
      assert.isTrue(exit._tag === "Failure" && exit.cause.reasons.some((r) => r._tag === "Die"))
    })
  )

  it.effect("after a failed onResync, the next Gap's downtime counts from when the source was last live", () =>
    Effect.gen(function* () {
      let resyncs = 0
      const { driver, sessions } = scripted([up, up, up])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          reconnect: Schedule.spaced("10 seconds"),
          onResync: () =>
            Effect.suspend(() => (++resyncs === 1 ? Effect.fail(connectError("outbox down")) : Effect.succeed([])))
        })
      )
      const gaps: Array<number> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "Gap" && gaps.push(Duration.toMillis(e.downtime)))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset")) // live until t = 0
      yield* Effect.yieldNow
      yield* TestClock.adjust("10 seconds") // attempt 2 connects at t = 10 s; its resync fails
      yield* TestClock.adjust("10 seconds") // attempt 3 connects at t = 20 s
      assert.deepStrictEqual(gaps, [10_000, 20_000], "the second Gap covers the whole outage")
    })
  )
})

describe("awaitConnection", () => {
  it.effect("waits for the connection while connecting, and fails once the connector closed for good", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([
        () => Effect.fail(connectError("refused")),
        up,
        () => Effect.fail(connectError("auth", false))
      ])
      const handle = yield* Connector.make(driver, yield* options())
      const waiting = yield* Effect.forkChild(handle.awaitConnection, { startImmediately: true })
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(waiting), "conn")
      sessions[1].fail(connectError("reset"))
      yield* Effect.yieldNow
      const closed = yield* Effect.forkChild(Effect.flip(handle.awaitConnection), { startImmediately: true })
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(closed)
      assert.strictEqual(error.message.includes("auth"), true)
    })
  )
})

describe("tracing", () => {
  it.effect("a span per connection attempt (with its outcome) and one around the resync", () =>
    Effect.gen(function* () {
      const spans: Array<Tracer.NativeSpan> = []
      const tracer = Tracer.make({
        span(options) {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      const { driver, sessions } = scripted([up, () => Effect.fail(connectError("refused")), up])
      yield* Effect.gen(function* () {
        yield* Connector.make(driver, yield* options({ name: "traced", onResync: () => Effect.succeed([1, 2]) }))
        yield* Effect.yieldNow
        sessions[0].fail(connectError("reset"))
        yield* Effect.yieldNow
        yield* TestClock.adjust("1 second") // attempt 2: refused
        yield* TestClock.adjust("1 second") // attempt 3: connected, resync
      }).pipe(Effect.provideService(Tracer.Tracer, tracer))
      const summary = spans.map((span) => [
        span.name,
        span.attributes.get("streamemit.attempt"),
        span.attributes.get("streamemit.outcome") ?? span.attributes.get("streamemit.replayed")
      ])
      assert.deepStrictEqual(summary, [
        ["streamemit.connect", 1, "connected"],
        ["streamemit.connect", 2, "Connect"],
        ["streamemit.connect", 3, "connected"],
        ["streamemit.resync", 3, 2]
      ])
      assert.strictEqual(spans[0]!.attributes.get("streamemit.connector"), "scripted")
      assert.strictEqual(spans[0]!.attributes.get("streamemit.name"), "traced")
      assert.strictEqual(spans[1]!.status._tag, "Ended")
      assert.isTrue(spans.every((span) => span.status._tag === "Ended"))
      assert.strictEqual(spans[3]!.attributes.get("streamemit.downtime_ms"), 2000)
    })
  )

  it.effect(
    "under Effect's nativeTracer (no backend) no span is made: the driver connects under the caller's span",
    () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const { driver } = scripted([
          () =>
            Effect.map(Effect.orDie(Effect.currentSpan), (span) => {
              seen.push(span.name)
              return "conn"
            })
        ])
        yield* Effect.gen(function* () {
          yield* Connector.make(driver, yield* options())
          yield* Effect.yieldNow
        }).pipe(Effect.withSpan("caller"))
        // A connect span would be kept for as long as the connection, for no reader.
        assert.deepStrictEqual(seen, ["caller"])
      })
  )
})
