/**
 * The tap: opens every source, merges their streams and writes one record per message — NDJSON on stdout by
 * default — with lifecycle events on stderr (or in-band with `events`), and stats per source.
 */
import { type ConnectorError, Lifecycle } from "@streamemit/core"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Demo from "./Demo.ts"
import * as Sources from "./Sources.ts"

export interface Options {
  readonly sources: ReadonlyArray<string>
  readonly framing: Sources.Framing
  readonly events: boolean
  readonly pretty: boolean
  readonly count: Option.Option<number>
  readonly duration: Option.Option<Duration.Duration>
  readonly stats: boolean
  readonly keepGoing: boolean
  readonly demo: boolean
}

/** Where the tap writes: the process's streams, or a test's. */
export interface Output {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined }
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined }
}

/** A source failed for good: exit code 1 (already reported on stderr). */
export class SourceFailed extends Data.TaggedError("SourceFailed")<{
  readonly source: string
  readonly error: ConnectorError.ConnectorError
}> {
  override readonly [Runtime.errorExitCode]: number = 1
  override readonly [Runtime.errorReported] = true
  override get message() {
    return `${this.source}: ${this.error.message}`
  }
}

interface Running {
  readonly spec: Sources.Spec
  readonly source: Sources.Source
  total: number
  state: string
}

const colors = { dim: "\x1b[2m", cyan: "\x1b[36m", yellow: "\x1b[33m", red: "\x1b[31m", reset: "\x1b[0m" }

/** Writes a line, waiting for `drain` when the stream's buffer is full (a slow pipe slows the tap down). */
const writeLine = (stream: Output["stdout"], line: string) =>
  Effect.suspend(() =>
    stream.write(`${line}\n`)
      ? Effect.void
      : Effect.callback<void>((resume) => {
          const done = () => resume(Effect.void)
          stream.once("drain", done)
          stream.once("error", done)
          return Effect.sync(() => {
            stream.removeListener("drain", done)
            stream.removeListener("error", done)
          })
        })
  )

const eventFields = (event: Lifecycle.Event): Record<string, unknown> => {
  switch (event._tag) {
    case "Connecting":
    case "Connected":
      return { event: event._tag.toLowerCase(), attempt: event.attempt }
    case "Disconnected":
      return {
        event: "disconnected",
        attempt: event.attempt,
        error: event.error.message,
        ...(event.retryIn === undefined ? {} : { retryInMillis: Duration.toMillis(event.retryIn) })
      }
    case "Gap":
      return { event: "gap", downtimeMillis: Duration.toMillis(event.downtime), delivery: event.delivery }
    case "Closed":
      return { event: "closed", ...(event.error === undefined ? {} : { error: event.error.message }) }
  }
}

const describe = (event: Lifecycle.Event) => {
  const fields = eventFields(event)
  const { event: name, ...rest } = fields
  const details = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
    .join(" ")
  return `${String(name)}${details === "" ? "" : ` ${details}`}`
}

export const run = (
  options: Options,
  output: Output
): Effect.Effect<void, Sources.UsageError | SourceFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const uris = [...options.sources]
    if (options.demo) {
      const demo = yield* Demo.start
      for (const note of demo.notes) yield* writeLine(output.stderr, `tap: demo: ${note}`)
      uris.push(...demo.uris)
    }
    if (uris.length === 0) {
      return yield* Effect.fail(new Sources.UsageError({ message: "no sources: give one or more URIs, or --demo" }))
    }
    const specs = yield* Effect.forEach(uris, (uri, i) => Sources.parse(uri, options.framing, `tap-${i + 1}`))
    const color = options.pretty && output.stdout.isTTY === true
    const paint = (code: keyof typeof colors, text: string) => (color ? `${colors[code]}${text}${colors.reset}` : text)

    const running: Array<Running> = []
    for (const spec of specs) {
      const source = yield* spec.open.pipe(
        Effect.mapError((error) =>
          error.reason._tag === "Config"
            ? new Sources.UsageError({ message: `${spec.label}: ${error.message}` })
            : new SourceFailed({ source: spec.label, error })
        )
      )
      running.push({ spec, source, total: 0, state: "connecting" })
    }

    // Lifecycle out of band: stderr, unless in-band with --events.
    for (const entry of running) {
      yield* entry.source.handle.events.pipe(
        Stream.runForEach((event) =>
          Effect.suspend(() => {
            if (event._tag !== "Gap") entry.state = event._tag.toLowerCase()
            return options.events
              ? Effect.void
              : writeLine(output.stderr, `tap: [${entry.spec.label}] ${describe(event)}`)
          })
        ),
        Effect.forkScoped
      )
    }

    const failures: Array<SourceFailed> = []
    const records = running.map((entry) => {
      const base = { source: entry.spec.label, connector: entry.spec.connector }
      const message = (item: unknown) => {
        entry.total++
        return { ...base, at: new Date().toISOString(), ...entry.source.fields(item) }
      }
      const signals: Stream.Stream<Record<string, unknown>, ConnectorError.ConnectorError> = options.events
        ? Stream.map(entry.source.handle.signals, (signal) =>
            Lifecycle.isEvent(signal)
              ? { ...base, at: new Date().toISOString(), ...eventFields(signal) }
              : message(signal.message)
          )
        : Stream.map(entry.source.handle.messages, message)
      return signals.pipe(
        Stream.catch(
          (error: ConnectorError.ConnectorError): Stream.Stream<never, Sources.UsageError | SourceFailed> => {
            // A bad option found on connecting (a missing directory, an unknown database) is bad input: exit 2.
            if (error.reason._tag === "Config" && !options.keepGoing) {
              return Stream.fail(new Sources.UsageError({ message: `${entry.spec.label}: ${error.message}` }))
            }
            const failed = new SourceFailed({ source: entry.spec.label, error })
            failures.push(failed)
            return Stream.fromEffect(
              writeLine(output.stderr, paint("red", `tap: [${entry.spec.label}] failed: ${error.message}`))
            ).pipe(Stream.flatMap(() => (options.keepGoing ? Stream.empty : Stream.fail(failed))))
          }
        )
      )
    })

    let merged = Stream.mergeAll(records, { concurrency: "unbounded" })
    if (Option.isSome(options.count)) merged = Stream.take(merged, options.count.value)
    if (Option.isSome(options.duration)) merged = Stream.interruptWhen(merged, Effect.sleep(options.duration.value))
    // The reader went away (`| head`): end quietly, closing every source.
    merged = Stream.interruptWhen(
      merged,
      Effect.callback<void>((resume) => {
        const onError = () => resume(Effect.void)
        output.stdout.once("error", onError)
        return Effect.sync(() => output.stdout.removeListener("error", onError))
      })
    )

    const started = Date.now()
    const summary = () =>
      Effect.forEach(running, (entry) =>
        Effect.map(entry.source.handle.stats, (stats) => {
          const seconds = Math.max(0.001, (Date.now() - started) / 1000)
          return `${entry.spec.label}  ${entry.state}  total=${entry.total}  rate=${(entry.total / seconds).toFixed(1)}/s  dropped=${stats.dropped}  reconnects=${stats.reconnects}`
        })
      )
    if (options.stats && output.stderr.isTTY === true) {
      // A live status block on the terminal, redrawn every second.
      let lines = 0
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            yield* Effect.sleep("1 second")
            const text = yield* summary()
            output.stderr.write(`${lines > 0 ? `\x1b[${lines}A` : ""}${text.map((l) => `\x1b[2K${l}`).join("\n")}\n`)
            lines = text.length
          })
        )
      )
    }

    const print = (record: Record<string, unknown>) => {
      if (!options.pretty) return writeLine(output.stdout, JSON.stringify(record))
      const { source, connector, at, data, ...rest } = record
      const time = String(at).slice(11, 23)
      const extra = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ")
      const body = typeof data === "string" ? data : JSON.stringify(data)
      return writeLine(
        output.stdout,
        `${paint("dim", time)} ${paint("cyan", String(source))} ${paint("yellow", String(connector))}${extra === "" ? "" : ` ${extra}`}${body === undefined ? "" : ` ${body}`}`
      )
    }

    const result = yield* Stream.runForEach(merged, print).pipe(Effect.exit)
    if (options.stats) {
      for (const line of yield* summary()) yield* writeLine(output.stderr, `tap: stats: ${line}`)
    }
    if (result._tag === "Failure") return yield* result
    // With --keep-going, failures were reported as they came; the tap fails only when no source is left.
    if (failures.length > 0 && (!options.keepGoing || failures.length === running.length)) {
      return yield* Effect.fail(failures[0]!)
    }
  })
