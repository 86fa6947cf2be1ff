/**
 * A scripted in-process driver for the machinery's tests: every rule that does not need a network (schedules,
 * ordering, timeouts, overflow) is driven from here under TestClock.
 */
import { Effect, Schedule, type Scope, Stream } from "effect"
import { Connector, ConnectorError, type Driver, type Lifecycle } from "../src/index.ts"

/** One scripted connection: what `connect` does for an attempt. */
export type Script = (
  session: Driver.Session<number>
) => Effect.Effect<string, ConnectorError.ConnectorError, Scope.Scope>

export const connectError = (message: string, retryable?: boolean) =>
  ConnectorError.make(
    "scripted",
    new ConnectorError.Connect(retryable === undefined ? { message } : { message, retryable })
  )

/** A driver whose attempts follow `scripts` (the last one repeats); it records what happened. */
export const scripted = (scripts: ReadonlyArray<Script>, extra: Partial<Driver.Driver<string, number>> = {}) => {
  const log: Array<string> = []
  const sessions: Array<Driver.Session<number>> = []
  const driver: Driver.Driver<string, number> = {
    connector: "scripted",
    connect: (session) => {
      sessions.push(session)
      log.push(`connect ${session.attempt}`)
      const script = scripts[Math.min(session.attempt, scripts.length) - 1]
      // The release is registered first, so that an attempt interrupted while connecting is released too.
      return Effect.acquireRelease(Effect.void, () => Effect.sync(() => log.push(`release ${session.attempt}`))).pipe(
        Effect.andThen(script(session))
      )
    },
    ...extra
  }
  return { driver, log, sessions }
}

export const up: Script = () => Effect.succeed("conn")
export const refused: Script = () => Effect.fail(connectError("refused"))

export const options = (overrides: Partial<Connector.CommonOptions<number>> = {}) =>
  Connector.resolve<number>(
    "scripted",
    { reconnect: Schedule.spaced("1 second"), ...overrides },
    { liveness: false, overflow: { bufferSize: 64 } }
  )

export const tags = (signals: ReadonlyArray<Lifecycle.Signal<number>>) =>
  signals.map((s) => (s._tag === "Message" ? `m${s.message}` : s._tag))

/** Collects the in-band signals of a handle until `n` arrived (in a fiber), for ordering checks. */
export const collectSignals = (handle: Connector.Handle<string, number>, n: number) =>
  handle.signals.pipe(Stream.take(n), Stream.runCollect, Effect.forkChild({ startImmediately: true }))
