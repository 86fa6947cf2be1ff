/**
 * The machinery, driven by a scripted in-process driver and TestClock: every rule that does not need a network
 * (schedules, ordering, timeouts) is pinned here; the connectors' suites run the same rules against real peers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Metric, Schedule, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Connector, ConnectorError, Decode, type Driver, Http, type Lifecycle, Metrics } from "../src/index.ts"
import { collectSignals, connectError, options, refused, type Script, scripted, tags, up } from "./Scripted.ts"

describe("Connector.resolve", () => {
  it.effect("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const cases: Array<[Connector.CommonOptions<number>, string]> = [
        [{ connectTimeout: "soon" as Duration.Input }, "connectTimeout"],
        [{ stableAfter: -5 }, "stableAfter"],
        [{ liveness: { interval: "forever and a day" as Duration.Input } }, "liveness.interval"],
        [{ reconnect: "yes" as unknown as boolean }, "reconnect"],
        [{ name: "" }, "name"],
        [{ overflow: { bufferSize: 0 } }, "overflow.bufferSize"],
        [{ onResync: 42 as never }, "onResync"]
      ]
      for (const [bad, option] of cases) {
        const exit = yield* Effect.exit(Connector.resolve("scripted", bad, { liveness: false }))
        assert.isTrue(Exit.isFailure(exit), option)
        const error = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons[0] as {
          error: ConnectorError.ConnectorError
        }
        assert.strictEqual(error.error.reason._tag, "Config")
        assert.strictEqual((error.error.reason as ConnectorError.Config).option, option)
      }
    })
  )

  it.effect('failOrSkip: "fail" by default, "skip" kept, anything else a Config error naming the option', () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Connector.failOrSkip("scripted", "onDecodeError", undefined), "fail")
      assert.strictEqual(yield* Connector.failOrSkip("scripted", "onDecodeError", "skip"), "skip")
      const exit = yield* Effect.exit(Connector.failOrSkip("scripted", "onOversized", "ignore" as never))
      assert.isTrue(Exit.isFailure(exit))
      const error = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons[0] as {
        error: ConnectorError.ConnectorError
      }
      assert.strictEqual((error.error.reason as ConnectorError.Config).option, "onOversized")
      assert.include(error.error.message, "ignore")
    })
  )

  it.effect("release: goodbye when the caller is done (at most the grace period), straight to cut otherwise", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const goodbye = () => Promise.resolve(log.push("goodbye"))
      const cut = () => void log.push("cut")
      yield* Connector.release(Exit.void, goodbye, cut)
      yield* Connector.release(Exit.interrupt(1), goodbye, cut)
      yield* Connector.release(Exit.fail("broken"), goodbye, cut)
      yield* Connector.release(Exit.void, undefined, cut)
      assert.deepStrictEqual(log, ["goodbye", "cut", "goodbye", "cut", "cut", "cut"])
      // A goodbye the server never answers is cut once the grace period is over.
      const hanging = yield* Effect.forkChild(
        Connector.release(Exit.void, () => new Promise(() => {}), cut, "1 second"),
        { startImmediately: true }
      )
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(log.length, 6)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(hanging)
      assert.strictEqual(log.length, 7)
    })
  )

  it.effect("defaults: reconnect on, 10 s connect timeout, the connector's liveness and overflow", () =>
    Effect.gen(function* () {
      const resolved = yield* Connector.resolve<number>(
        "scripted",
        {},
        { liveness: { interval: "20 seconds", timeout: "5 seconds" }, overflow: { strategy: "dropping" } }
      )
      assert.isDefined(resolved.schedule)
      assert.strictEqual(Duration.toMillis(resolved.connectTimeout), 10_000)
      assert.strictEqual(Duration.toMillis(resolved.liveness!.interval), 20_000)
      assert.strictEqual(resolved.policy.strategy, "dropping")
      assert.strictEqual(resolved.name, "default")
    })
  )
})

describe("Connector.make", () => {
  it.effect("an ungated driver's messages flow while connecting, ahead of Connected; dropped() is counted", () =>
    Effect.gen(function* () {
      const { driver } = scripted(
        [
          (session) =>
            Effect.sync(() => {
              session.emit(1)
              session.emit(2)
              session.dropped(3)
              setImmediate(() => {
                session.emit(3)
                session.end()
              })
              return "conn"
            })
        ],
        { ungated: true }
      )
      const resolved = yield* options({ name: "ungated" })
      const handle = yield* Connector.make(driver, resolved)
      const signals = yield* handle.signals.pipe(Stream.runCollect)
      assert.deepStrictEqual(tags(signals), ["Connecting", "m1", "m2", "Connected", "m3", "Closed"])
      assert.strictEqual((yield* handle.stats).dropped, 3)
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("scripted", "ungated").dropped)).count, 3)
    })
  )

  it.effect("lifecycle in order: Connecting, Connected, messages, then Closed when the source ends", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([
        (session) =>
          Effect.sync(() => {
            // Messages that arrive while connecting wait behind Connected.
            session.emit(1)
            setImmediate(() => {
              session.emitAll([2, 3])
              session.end()
            })
            return "conn"
          })
      ])
      const handle = yield* Connector.make(driver, yield* options())
      const signals = yield* handle.signals.pipe(Stream.runCollect)
      assert.deepStrictEqual(tags(signals), ["Connecting", "Connected", "m1", "m2", "m3", "Closed"])
      assert.deepStrictEqual(log, ["connect 1", "release 1"])
      assert.strictEqual((yield* handle.status)._tag, "Closed")
    })
  )

  it.effect("push: bytes and messages counted; what was pushed comes before a later emit and before the end", () =>
    Effect.gen(function* () {
      const { driver } = scripted([
        (session) =>
          Effect.sync(() => {
            setImmediate(() => {
              // One library callback per message, as ws/pg/ioredis do for the messages of one socket read.
              for (let i = 1; i <= 5; i++) session.push(i, 10)
              setImmediate(() => {
                session.push(6, 10)
                // An emit and the end in the same callback keep their order after what was pushed.
                session.emit(7)
                session.push(8, 10)
                session.end()
              })
            })
            return "conn"
          })
      ])
      const handle = yield* Connector.make(driver, yield* options({ name: "push" }))
      const batches: Array<ReadonlyArray<number>> = []
      yield* handle.messages.pipe(Stream.runForEachArray((batch) => Effect.sync(() => void batches.push(batch))))
      assert.deepStrictEqual(batches.flat(), [1, 2, 3, 4, 5, 6, 7, 8])
      const m = Metrics.forConnector("scripted", "push")
      assert.strictEqual((yield* Metric.value(m.bytes)).count, 70)
      assert.strictEqual((yield* Metric.value(m.messages)).count, 8)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect(
    "lost: a Gap with the count, in its place among the messages; one noticed while connecting follows Connected",
    () =>
      Effect.gen(function* () {
        const { driver } = scripted([
          (session) =>
            Effect.sync(() => {
              // Noticed before the connection is announced: it must not come ahead of Connected.
              session.lost(2)
              setImmediate(() => {
                session.push(1, 1)
                session.lost(3)
                session.push(2, 1)
                session.lost(0) // nothing lost: no Gap
                session.end()
              })
              return "conn"
            })
        ])
        const handle = yield* Connector.make(driver, yield* options({ name: "lost" }))
        const signals = yield* handle.signals.pipe(Stream.runCollect)
        assert.deepStrictEqual(tags(signals), ["Connecting", "Connected", "Gap", "m1", "Gap", "m2", "Closed"])
        const gaps = signals.filter((s): s is Lifecycle.Gap => s._tag === "Gap")
        assert.deepStrictEqual(
          gaps.map((gap) => [gap.delivery, gap.lost, Duration.toMillis(gap.downtime)]),
          [
            ["possible-loss", 2, 0],
            ["possible-loss", 3, 0]
          ]
        )
        const m = Metrics.forConnector("scripted", "lost")
        assert.strictEqual((yield* Metric.value(m.lost)).count, 5)
        assert.strictEqual((yield* handle.stats).dropped, 0, "lost before it was read: not a drop of ours")
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("flush: what push holds enters the buffer at once (a read loop calls it after each chunk)", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up])
      const handle = yield* Connector.make(driver, yield* options())
      yield* Effect.yieldNow
      const before = (yield* handle.stats).depth
      sessions[0].push(1, 1)
      sessions[0].push(2, 1)
      assert.strictEqual((yield* handle.stats).depth, before, "held until the callback returns")
      sessions[0].flush()
      assert.strictEqual((yield* handle.stats).depth, before + 2)
      assert.deepStrictEqual(yield* handle.messages.pipe(Stream.take(2), Stream.runCollect), [1, 2])
    })
  )

  it.effect("reconnects with the schedule; the Gap comes before the new connection's messages", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, refused, up])
      const handle = yield* Connector.make(driver, yield* options())
      const fiber = yield* collectSignals(handle, 10)
      yield* Effect.yieldNow
      sessions[0].emit(1)
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      sessions[0].emit(99) // a late callback of the dead connection: ignored
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second") // attempt 2: refused
      yield* TestClock.adjust("1 second") // attempt 3: up
      sessions[2].emit(2)
      const signals = yield* Fiber.join(fiber)
      assert.deepStrictEqual(tags(signals), [
        "Connecting",
        "Connected",
        "m1",
        "Disconnected",
        "Connecting",
        "Disconnected",
        "Connecting",
        "Connected",
        "Gap",
        "m2"
      ])
    })
  )

  it.effect("Disconnected says when the next attempt comes; Gap says how long the outage was", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, refused, up])
      const handle = yield* Connector.make(driver, yield* options({ reconnect: Schedule.spaced("2 seconds") }))
      const fiber = yield* collectSignals(handle, 8)
      yield* Effect.yieldNow
      yield* TestClock.adjust("30 seconds") // connection 1 stayed up 30 s
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("2 seconds")
      yield* TestClock.adjust("2 seconds")
      const signals = yield* Fiber.join(fiber)
      const disconnected = signals.filter((s): s is Lifecycle.Disconnected => s._tag === "Disconnected")
      assert.strictEqual(Duration.toMillis(disconnected[0].retryIn!), 2000)
      assert.strictEqual(disconnected[0].error.reason.message, "reset")
      const gap = signals.find((s): s is Lifecycle.Gap => s._tag === "Gap")!
      assert.strictEqual(Duration.toMillis(gap.downtime), 4000)
      assert.strictEqual(gap.delivery, "possible-loss")
    })
  )

  it.effect("a non-retryable error stops at once: one attempt, the stream fails with it", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([() => Effect.fail(connectError("bad credentials", false))])
      const exit = yield* Connector.stream(Effect.map(options(), (o) => ({ driver, options: o }))).pipe(
        Stream.runCollect,
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(log, ["connect 1", "release 1"])
      const error = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons[0] as {
        error: ConnectorError.ConnectorError
      }
      assert.strictEqual(error.error.reason.message, "bad credentials")
    })
  )

  it.effect("reconnect: false fails the stream with the first error", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([refused])
      const exit = yield* Connector.stream(
        Effect.map(options({ reconnect: false }), (o) => ({ driver, options: o }))
      ).pipe(Stream.runCollect, Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(log, ["connect 1", "release 1"])
    })
  )

  it.effect("a schedule that gives up fails the stream with the last error", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([refused])
      const fiber = yield* Connector.stream(
        Effect.map(options({ reconnect: Schedule.recurs(2) }), (o) => ({ driver, options: o }))
      ).pipe(Stream.runCollect, Effect.exit, Effect.forkChild)
      yield* TestClock.adjust("1 minute")
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(log, ["connect 1", "release 1", "connect 2", "release 2", "connect 3", "release 3"])
    })
  )

  it.effect("the default schedule backs off exponentially from 250 ms and caps at 30 s", () =>
    Effect.gen(function* () {
      const { driver } = scripted([refused])
      const handle = yield* Connector.make(driver, yield* options({ reconnect: true }))
      const delays: Array<number> = []
      const fiber = yield* handle.signals.pipe(
        Stream.filter((s): s is Lifecycle.Disconnected => s._tag === "Disconnected"),
        Stream.take(10),
        Stream.runForEach((d) => Effect.sync(() => delays.push(Duration.toMillis(d.retryIn!)))),
        Effect.forkChild
      )
      for (let i = 0; i < 12; i++) yield* TestClock.adjust("40 seconds")
      yield* Fiber.join(fiber)
      const nominal = [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
      delays.forEach((delay, i) => {
        // Jittered: within ±20 % of the nominal delay.
        assert.isAtLeast(delay, nominal[i] * 0.8 - 1, `delay ${i}`)
        assert.isAtMost(delay, nominal[i] * 1.2 + 1, `delay ${i}`)
      })
    })
  )

  it.effect("the schedule resets once a connection stayed up for stableAfter", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up, up])
      const handle = yield* Connector.make(
        driver,
        yield* options({
          reconnect: Schedule.exponential("1 second"),
          stableAfter: "1 minute"
        })
      )
      const delays: Array<number> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) =>
          Effect.sync(() => e._tag === "Disconnected" && delays.push(Duration.toMillis(e.retryIn!)))
        ),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset")) // short-lived: the schedule advances
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("2 minutes") // connection 2 stays up for 2 minutes
      sessions[1].fail(connectError("reset")) // long-lived: the schedule starts over
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(delays, [1000, 1000])
    })
  )

  it.effect("onResync runs after the Gap; its items come before the new connection's messages", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([
        up,
        (session) =>
          Effect.sync(() => {
            // Live traffic right after subscribing must wait behind the resync.
            session.emit(100)
            return "conn"
          })
      ])
      const resyncs: Array<Connector.ResyncInfo> = []
      const handle = yield* Connector.make(
        driver,
        yield* options({
          onResync: (info) =>
            Effect.sync(() => {
              resyncs.push(info)
              return [10, 11]
            })
        })
      )
      const fiber = yield* collectSignals(handle, 10)
      yield* Effect.yieldNow
      sessions[0].emit(1)
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      sessions[1].emit(101)
      const signals = yield* Fiber.join(fiber)
      assert.deepStrictEqual(tags(signals), [
        "Connecting",
        "Connected",
        "m1",
        "Disconnected",
        "Connecting",
        "Connected",
        "Gap",
        "m10",
        "m11",
        "m100"
      ])
      assert.strictEqual(resyncs.length, 1)
      assert.strictEqual(resyncs[0].attempt, 2)
    })
  )

  it.effect("connectTimeout: a connect that hangs is a retryable Timeout", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([() => Effect.never, up])
      const handle = yield* Connector.make(driver, yield* options({ connectTimeout: "5 seconds" }))
      const fiber = yield* collectSignals(handle, 4)
      yield* TestClock.adjust("5 seconds")
      yield* TestClock.adjust("1 second")
      const signals = yield* Fiber.join(fiber)
      const disconnected = signals.find((s): s is Lifecycle.Disconnected => s._tag === "Disconnected")!
      assert.strictEqual(disconnected.error.reason._tag, "Timeout")
      assert.include(disconnected.error.message, "5s")
      // The hanging attempt was interrupted and released.
      assert.deepStrictEqual(log.slice(0, 3), ["connect 1", "release 1", "connect 2"])
    })
  )

  it.effect("a failure the driver reports while connecting ends the attempt at once, not at the connect timeout", () =>
    Effect.gen(function* () {
      // The reply the driver waits for never comes, but its socket already said why (a redirect, a reset).
      const { driver, log } = scripted([
        (session) =>
          Effect.andThen(
            Effect.sync(() => session.fail(connectError("redirected"))),
            Effect.never
          ),
        up
      ])
      const handle = yield* Connector.make(driver, yield* options({ connectTimeout: "5 seconds" }))
      const fiber = yield* collectSignals(handle, 4)
      yield* TestClock.adjust("1 second")
      const signals = yield* Fiber.join(fiber)
      assert.deepStrictEqual(tags(signals), ["Connecting", "Disconnected", "Connecting", "Connected"])
      const disconnected = signals[1] as Lifecycle.Disconnected
      assert.strictEqual(disconnected.error.message.includes("redirected"), true)
      assert.deepStrictEqual(log.slice(0, 3), ["connect 1", "release 1", "connect 2"])
    })
  )
  it.effect("liveness with a probe: a silent connection is probed, an unanswered probe is death", () =>
    Effect.gen(function* () {
      let probes = 0
      let answer = true
      const { driver, sessions } = scripted([up, up], {
        probe: () =>
          Effect.suspend(() => {
            probes++
            return answer ? Effect.void : Effect.never
          })
      })
      const handle = yield* Connector.make(
        driver,
        yield* options({ liveness: { interval: "10 seconds", timeout: "3 seconds" } })
      )
      const fiber = yield* collectSignals(handle, 6)
      yield* Effect.yieldNow
      // Traffic keeps the probe away.
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("5 seconds")
        sessions[0].alive()
      }
      assert.strictEqual(probes, 0)
      // Traffic is stamped: silence is probed when the interval is over, not before.
      yield* TestClock.adjust("9900 millis")
      assert.strictEqual(probes, 0)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(probes, 1, "silent for the interval: probed")
      answer = false
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(probes, 2)
      yield* TestClock.adjust("3 seconds") // the probe is unanswered for the timeout
      yield* TestClock.adjust("1 second")
      const signals = yield* Fiber.join(fiber)
      assert.deepStrictEqual(tags(signals), [
        "Connecting",
        "Connected",
        "Disconnected",
        "Connecting",
        "Connected",
        "Gap"
      ])
      const disconnected = signals[2] as Lifecycle.Disconnected
      assert.strictEqual(disconnected.error.reason._tag, "Timeout")
    })
  )

  it.effect("liveness without a probe: an idle timer that every byte resets", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up])
      const handle = yield* Connector.make(driver, yield* options({ liveness: { timeout: "10 seconds" } }))
      const events: Array<string> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e._tag))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("9 seconds")
        sessions[0].received(1)
      }
      assert.notInclude(events, "Disconnected")
      // Stalled: detected when the timeout is over, not before.
      yield* TestClock.adjust("9900 millis")
      assert.notInclude(events, "Disconnected")
      yield* TestClock.adjust("100 millis")
      assert.include(events, "Disconnected")
    })
  )

  it.effect("a slow connect does not use up the idle budget: silence is counted from Connected", () =>
    Effect.gen(function* () {
      const slow: Script = () => Effect.as(Effect.sleep("9 seconds"), "conn")
      const { driver } = scripted([slow, up])
      const handle = yield* Connector.make(
        driver,
        yield* options({ liveness: { timeout: "10 seconds" }, connectTimeout: "1 minute" })
      )
      const events: Array<string> = []
      yield* handle.events.pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e._tag))),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("9 seconds")
      assert.include(events, "Connected")
      // 9 s of connecting and 9.9 s of silence: under the timeout counted from Connected.
      yield* TestClock.adjust("9900 millis")
      assert.notInclude(events, "Disconnected")
      yield* TestClock.adjust("100 millis")
      assert.include(events, "Disconnected")
    })
  )

  it.effect("metrics move: messages, bytes, connected, reconnects, errors by reason", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, up])
      const handle = yield* Connector.make(driver, yield* options({ name: "metrics" }))
      const m = Metrics.forConnector("scripted", "metrics")
      const fiber = yield* handle.messages.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      assert.strictEqual((yield* Metric.value(m.connected)).value, 1)
      sessions[0].received(10)
      sessions[0].emitAll([1, 2])
      yield* Effect.yieldNow
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      assert.strictEqual((yield* Metric.value(m.connected)).value, 0)
      yield* TestClock.adjust("1 second")
      sessions[1].emit(3)
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2, 3])
      assert.strictEqual((yield* Metric.value(m.messages)).count, 3)
      assert.strictEqual((yield* Metric.value(m.bytes)).count, 10)
      assert.strictEqual((yield* Metric.value(m.reconnects)).count, 1)
      assert.strictEqual((yield* Metric.value(m.errors("Connect"))).count, 1)
      assert.strictEqual((yield* Metric.value(m.downtimeMillis)).count, 1000)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect('"suspend" pauses the new transport after a reconnect when the buffer is still full', () =>
    Effect.gen(function* () {
      const flows: Array<Array<string>> = [[], []]
      const { driver, sessions } = scripted([
        (session) =>
          Effect.sync(() => {
            session.flowControl({ pause: () => flows[0].push("pause"), resume: () => flows[0].push("resume") })
            return "conn"
          }),
        (session) =>
          Effect.sync(() => {
            session.flowControl({ pause: () => flows[1].push("pause"), resume: () => flows[1].push("resume") })
            return "conn"
          })
      ])
      const handle = yield* Connector.make(
        driver,
        yield* options({ overflow: { strategy: "suspend", bufferSize: 4, hardCap: 8 } })
      )
      yield* Effect.yieldNow
      sessions[0].emitAll([1, 2, 3])
      assert.deepStrictEqual(flows[0], [], "lifecycle events take no room: 3 messages leave room for 1")
      sessions[0].emit(4)
      assert.deepStrictEqual(flows[0], ["pause"], "4 messages fill the buffer of 4")
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      // Nobody consumed: the buffer is still full, so the new transport is paused at once.
      assert.deepStrictEqual(flows[1], ["pause"])
      const first = yield* handle.messages.pipe(Stream.take(4), Stream.runCollect)
      assert.deepStrictEqual(first, [1, 2, 3, 4])
      assert.deepStrictEqual(flows[1], ["pause", "resume"])
      assert.strictEqual((yield* handle.stats).dropped, 0)
    })
  )

  it.effect("the handle's connection is available while connected, a Closed error otherwise", () =>
    Effect.gen(function* () {
      const { driver, sessions } = scripted([up, refused])
      const handle = yield* Connector.make(driver, yield* options())
      yield* Effect.yieldNow
      assert.strictEqual(yield* handle.connection, "conn")
      sessions[0].fail(connectError("reset"))
      yield* Effect.yieldNow
      const error = yield* Effect.flip(handle.connection)
      assert.strictEqual(error.reason._tag, "Closed")
    })
  )

  it.effect("closing the scope releases the connection and interrupts a pending reconnect", () =>
    Effect.gen(function* () {
      const { driver, log } = scripted([up])
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* Connector.make(driver, yield* options())
          yield* Effect.yieldNow
          assert.strictEqual((yield* handle.status)._tag, "Connected")
        })
      )
      assert.deepStrictEqual(log, ["connect 1", "release 1"])
    })
  )

  it.effect("a live connection is released with its session's outcome: end, failure, or the handle's close", () =>
    Effect.gen(function* () {
      // A live connection holds no fiber: its Scope is closed by the session's end or failure, or by the close.
      const outcomes: Array<string> = []
      const sessions: Array<Driver.Session<number>> = []
      const driver: Driver.Driver<string, number> = {
        connector: "scripted",
        connect: (session) => {
          sessions.push(session)
          return Effect.acquireRelease(Effect.succeed("conn"), (_, exit) =>
            Effect.sync(() =>
              outcomes.push(
                Exit.isSuccess(exit)
                  ? `${session.attempt}: ended`
                  : Cause.hasInterruptsOnly(exit.cause)
                    ? `${session.attempt}: interrupted`
                    : `${session.attempt}: failed ${String(Cause.squash(exit.cause))}`
              )
            )
          )
        }
      }
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* Connector.make(driver, yield* options())
          yield* Effect.yieldNow
          sessions[0]!.fail(connectError("reset"))
          yield* TestClock.adjust("1 second")
          assert.strictEqual((yield* handle.status)._tag, "Connected")
          assert.strictEqual(sessions.length, 2)
        })
      )
      assert.strictEqual(outcomes.length, 2)
      assert.match(outcomes[0]!, /^1: failed .*reset/)
      assert.strictEqual(outcomes[1], "2: interrupted")

      const ending = yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* Connector.make(driver, yield* options())
          yield* Effect.yieldNow
          sessions[2]!.end()
          // The end of the source is the end of the stream.
          yield* Stream.runDrain(handle.messages)
          return yield* handle.status
        })
      )
      assert.strictEqual(outcomes[2], "1: ended")
      assert.strictEqual(ending._tag, "Closed")
    })
  )
})

describe("Http.retryAfter and Http.statusError", () => {
  it("Retry-After: delay-seconds or an HTTP-date in the future; anything else is no delay", () => {
    const now = Date.parse("2026-12-01T12:00:00Z")
    assert.strictEqual(Duration.toMillis(Http.retryAfter("120", now)!), 120_000)
    assert.strictEqual(Duration.toMillis(Http.retryAfter("Tue, 01 Dec 2026 12:00:30 GMT", now)!), 30_000)
    assert.isUndefined(Http.retryAfter("Tue, 01 Dec 2026 11:59:00 GMT", now), "a date in the past")
    assert.isUndefined(Http.retryAfter("0", now))
    assert.isUndefined(Http.retryAfter("soon", now))
    assert.isUndefined(Http.retryAfter(null, now))
  })

  it("one classifier: 401/403 Auth, 408/429/5xx retried with the Retry-After floor, other 4xx not retried", () => {
    const floors: Array<number> = []
    const session = {
      setReconnectFloor: (d: Duration.Input) => floors.push(Duration.toMillis(Duration.fromInputUnsafe(d)))
    } as unknown as Driver.Session<never>
    const classify = (status: number, retryAfter: string | null = null) =>
      Http.statusError("scripted", status, retryAfter, session)
    assert.strictEqual(classify(401).reason._tag, "Auth")
    assert.isFalse(classify(403).isRetryable)
    for (const status of [408, 429, 500, 503]) {
      assert.strictEqual(classify(status).reason._tag, "Connect")
      assert.isTrue(classify(status).isRetryable)
    }
    const inAMinute = new Date(Date.now() + 60_000).toUTCString()
    const unavailable = classify(503, inAMinute)
    assert.isAbove(floors[0], 55_000)
    assert.isAtMost(floors[0], 60_000)
    // Errors carry data: a caller decides from fields, not from the message.
    assert.strictEqual(unavailable.reason.status, 503)
    assert.strictEqual(unavailable.reason.retryAfterMillis, floors[0])
    assert.strictEqual(classify(401).reason.status, 401)
    const notFound = classify(404)
    assert.strictEqual(notFound.reason._tag, "Protocol")
    assert.isFalse(notFound.isRetryable)
    assert.include(
      Http.statusError("scripted", 404, null, session, "handshake refused with HTTP 404").message,
      "handshake"
    )
  })
})

describe("Decode.jsonDecoder", () => {
  const Payload = Schema.Struct({ id: Schema.Number })
  const decodedDriver = (texts: ReadonlyArray<string>, onError: Decode.OnDecodeError) => {
    const decode = Decode.jsonDecoder("scripted", Payload, onError)
    const driver: Driver.Driver<string, { readonly id: number }> = {
      connector: "scripted",
      connect: (session) =>
        Effect.sync(() => {
          setImmediate(() => {
            for (const text of texts) decode(text, session)
            session.end()
          })
          return "conn"
        })
    }
    return driver
  }

  it.effect('"skip" drops invalid payloads and counts them', () =>
    Effect.gen(function* () {
      const driver = decodedDriver(['{"id":1}', "not json", '{"id":"two"}', '{"id":3}'], "skip")
      const out = yield* Connector.stream(
        Effect.map(Connector.resolve("scripted", { reconnect: false, name: "skips" }, { liveness: false }), (o) => ({
          driver,
          options: o
        }))
      ).pipe(Stream.runCollect)
      assert.deepStrictEqual(out, [{ id: 1 }, { id: 3 }])
      assert.strictEqual((yield* Metric.value(Metrics.forConnector("scripted", "skips").decodeSkipped)).count, 2)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect('"fail" fails the stream with a non-retryable Decode error naming the problem', () =>
    Effect.gen(function* () {
      const driver = decodedDriver(['{"id":1}', '{"id":"two"}'], "fail")
      const error = yield* Connector.stream(
        Effect.map(Connector.resolve("scripted", {}, { liveness: false }), (o) => ({ driver, options: o }))
      ).pipe(Stream.runCollect, Effect.flip)
      assert.strictEqual(error.reason._tag, "Decode")
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "Expected number")
    })
  )
})

describe("ConnectorError.redactUrl", () => {
  it("hides passwords and secret query parameters", () => {
    assert.strictEqual(
      ConnectorError.redactUrl("postgres://app:hunter2@db:5432/x?sslmode=require&password=p"),
      "postgres://app:***@db:5432/x?sslmode=require&password=***"
    )
    assert.strictEqual(ConnectorError.redactUrl("wss://h/feed?token=abc&room=1"), "wss://h/feed?token=***&room=1")
    assert.strictEqual(ConnectorError.redactUrl("::not a url"), "<invalid URL>")
  })
})

describe("Connector.make events", () => {
  it.effect("a subscription after the close gets the Closed status, then the end (not a hang)", () =>
    Effect.gen(function* () {
      const driver: Driver.Driver<object, string> = { connector: "null", connect: () => Effect.succeed({}) }
      const resolved = yield* Connector.resolve<string>("null", {}, { liveness: false })
      const scope = yield* Scope.make()
      const handle = yield* Scope.provide(Connector.make(driver, resolved), scope)
      yield* handle.awaitConnection
      yield* Scope.close(scope, Exit.void)
      const events = yield* handle.events.pipe(Stream.runCollect, Effect.timeout("1 second"))
      assert.deepStrictEqual(
        events.map((event) => event._tag),
        ["Closed"]
      )
    })
  )
})
