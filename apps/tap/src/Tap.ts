/**
 * The tap: opens every source, merges their streams and writes one line per message — readable, NDJSON or from a
 * template — with lifecycle events on stderr (or in-band with `events`), and a status table per source.
 */
import * as Readline from "node:readline"
import { styleText } from "node:util"
import { Checkpoint, ConnectorError, Lifecycle } from "@streamemit/core"
import { RedisStreams } from "@streamemit/redis-streams"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Dashboard from "./Dashboard.ts"
import * as Demo from "./Demo.ts"
import * as Screen from "./Screen.ts"
import * as Sources from "./Sources.ts"

export interface Options {
  readonly sources: ReadonlyArray<string>
  readonly framing: Sources.Framing
  readonly events: boolean
  readonly pretty: boolean
  readonly format: Option.Option<string>
  readonly count: Option.Option<number>
  readonly duration: Option.Option<Duration.Duration>
  readonly stats: boolean
  readonly keepGoing: boolean
  readonly giveUpAfter: Option.Option<number>
  readonly failFast: boolean
  readonly sendStdin: boolean
  /** `redis+stream://host:port/STREAM`: every message record is also added to that stream. */
  readonly to?: Option.Option<string> | undefined
  /** A checkpoint file: sources with a cursor resume where the last run stopped. */
  readonly checkpoint?: Option.Option<string> | undefined
  /** Serve the live dashboard at this address (`7070`, `:7070`, `host:7070`). */
  readonly ui?: Option.Option<string> | undefined
  readonly demo: boolean
}

/** Where the tap reads and writes: the process's streams, or a test's. */
export interface Output {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined }
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined }
  readonly stdin?: NodeJS.ReadableStream | undefined
}

/** A source (or the `--to` stream) failed for good: exit code 1 (already reported on stderr). */
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

/** Sources that never connected while the tap ran (`--duration`, Ctrl-C): exit code 1. */
export class NeverConnected extends Data.TaggedError("NeverConnected")<{ readonly sources: ReadonlyArray<string> }> {
  override readonly [Runtime.errorExitCode]: number = 1
  override readonly [Runtime.errorReported] = true
  override get message() {
    return `never connected: ${this.sources.join(", ")}`
  }
}

/** One line of output: a message's record, or (with --events) a lifecycle event's. */
interface Line {
  readonly message: boolean
  readonly record: Record<string, unknown>
  /** Runs once the line is written (a durable source's ack). */
  readonly after?: Effect.Effect<void> | undefined
}

interface Running {
  readonly spec: Sources.Spec
  readonly source: Sources.Source
  total: number
  state: string
  everConnected: boolean
  /** For the dashboard: the latest records, the lifecycle timeline, messages per second. */
  readonly recent: Array<Record<string, unknown>>
  readonly timeline: Array<Record<string, unknown>>
  readonly rates: Array<number>
  counted: number
}

export const eventFields = (event: Lifecycle.Event): Record<string, unknown> => {
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
      return {
        event: "gap",
        downtimeMillis: Duration.toMillis(event.downtime),
        delivery: event.delivery,
        ...(event.lost === undefined ? {} : { lost: event.lost })
      }
    case "Closed":
      return { event: "closed", ...(event.error === undefined ? {} : { error: event.error.message }) }
  }
}

const describe = (fields: Record<string, unknown>) => {
  const { event: name, ...rest } = fields
  const details = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
    .join(" ")
  return `${String(name)}${details === "" ? "" : ` ${details}`}`
}

/**
 * The stderr line of a lifecycle event, or none. The error that ends a source is printed once, by the line that
 * says it failed: the final `Disconnected` and `Closed` leave it out.
 */
const lifecycleLine = (event: Lifecycle.Event): string | undefined => {
  if (event._tag === "Disconnected" && event.retryIn === undefined) return undefined
  if (event._tag === "Closed") return event.error === undefined ? "closed" : undefined
  return describe(eventFields(event))
}

/** `{at} {source} {data.price}`: the record's fields by dotted path; objects as JSON; a missing field is empty. */
export const renderTemplate = (template: string, record: Record<string, unknown>): string =>
  template.replace(/\{([^{}]+)\}/g, (_, path: string) => {
    let value: unknown = record
    for (const key of path.trim().split(".")) {
      value = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined
    }
    return value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value)
  })

export const run = (
  options: Options,
  output: Output
): Effect.Effect<void, Sources.UsageError | SourceFailed | NeverConnected, Scope.Scope> =>
  Effect.gen(function* () {
    const screen = yield* Screen.make(output, options.stats)
    const uris = [...options.sources]
    if (options.demo) {
      const demo = yield* Demo.start
      for (const note of demo.notes) yield* screen.line("stderr", `tap: demo: ${note}`)
      uris.push(...demo.uris)
    }
    if (uris.length === 0) {
      return yield* Effect.fail(new Sources.UsageError({ message: "no sources: give one or more URIs, or --demo" }))
    }
    const reconnect = Sources.reconnect({ giveUpAfter: options.giveUpAfter, failFast: options.failFast })
    // One store for every source: a file written whole on each save.
    const checkpoint =
      options.checkpoint === undefined || Option.isNone(options.checkpoint)
        ? undefined
        : Context.get(yield* Layer.build(Checkpoint.layerFile(options.checkpoint.value)), Checkpoint.Store)
    const specs = yield* Effect.forEach(uris, (uri, i) =>
      Sources.parse(uri, { framing: options.framing, name: `tap-${i + 1}`, reconnect, checkpoint })
    )
    if (checkpoint !== undefined) {
      for (const spec of specs) {
        if (!spec.resumable) {
          yield* screen.line("stderr", `tap: [${spec.label}] --checkpoint: no cursor to resume from; starts from now`)
        }
      }
    }
    const paint = (format: Parameters<typeof styleText>[0], text: string, stream: "stdout" | "stderr" = "stdout") =>
      styleText(format, text, { stream: output[stream] as NodeJS.WriteStream })

    const relay = yield* openRelay(options.to ?? Option.none())
    const running: Array<Running> = []
    for (const spec of specs) {
      const source = yield* spec.open.pipe(
        Effect.mapError((error) =>
          error.reason._tag === "Config"
            ? new Sources.UsageError({ message: `${spec.label}: ${error.message}` })
            : new SourceFailed({ source: spec.label, error })
        )
      )
      const entry: Running = {
        spec,
        source,
        total: 0,
        state: "connecting",
        everConnected: false,
        recent: [],
        timeline: [],
        rates: [],
        counted: 0
      }
      running.push(entry)
      // Subscribed at once: the first attempt's events are all there (the subscription starts with the status).
      yield* entry.source.handle.events.pipe(
        Stream.runForEach((event) =>
          Effect.suspend(() => {
            if (event._tag !== "Gap") entry.state = event._tag.toLowerCase()
            if (event._tag === "Connected") entry.everConnected = true
            if (event._tag === "Gap" || event._tag === "Disconnected") {
              entry.timeline.push({ at: new Date().toISOString(), ...eventFields(event) })
              if (entry.timeline.length > 50) entry.timeline.shift()
            }
            const line = options.events ? undefined : lifecycleLine(event)
            return line === undefined ? Effect.void : screen.line("stderr", `tap: [${entry.spec.label}] ${line}`)
          })
        ),
        Effect.forkScoped({ startImmediately: true })
      )
    }

    if (options.sendStdin) {
      const senders = running.flatMap((entry) =>
        entry.source.send === undefined ? [] : [{ label: entry.spec.label, send: entry.source.send }]
      )
      if (senders.length === 0) {
        return yield* Effect.fail(new Sources.UsageError({ message: "--send-stdin: no ws:// source to send to" }))
      }
      yield* sendLines(output.stdin ?? process.stdin, senders, (line) => screen.line("stderr", line))
    }

    // The live dashboard: messages per second sampled every second; the page polls nothing, it is pushed.
    const uiAddress =
      options.ui === undefined || Option.isNone(options.ui) ? undefined : Dashboard.parseAddress(options.ui.value)
    if (options.ui !== undefined && Option.isSome(options.ui) && uiAddress === undefined) {
      return yield* Effect.fail(
        new Sources.UsageError({ message: `--ui ${options.ui.value}: not an address (7070, :7070, host:7070)` })
      )
    }
    const dashboard = uiAddress !== undefined
    if (uiAddress !== undefined) {
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.andThen(
            Effect.sleep("1 second"),
            Effect.sync(() => {
              for (const entry of running) {
                entry.rates.push(entry.total - entry.counted)
                entry.counted = entry.total
                if (entry.rates.length > 60) entry.rates.shift()
              }
            })
          )
        )
      )
      const snapshot = Effect.forEach(running, (entry) =>
        Effect.map(
          entry.source.handle.stats,
          (stats): Dashboard.SourceView => ({
            label: entry.spec.label,
            connector: entry.spec.connector,
            state: entry.state,
            total: entry.total,
            dropped: stats.dropped,
            reconnects: stats.reconnects,
            rates: entry.rates,
            timeline: entry.timeline,
            recent: entry.recent
          })
        )
      )
      const url = yield* Dashboard.serve(uiAddress, snapshot).pipe(
        Effect.mapError(
          (cause) =>
            new Sources.UsageError({ message: `--ui ${options.ui!.pipe(Option.getOrThrow)}: ${cause.message}` })
        )
      )
      yield* screen.line("stderr", `tap: dashboard at ${url}`)
    }

    const failures: Array<SourceFailed> = []
    const records = running.map((entry) => {
      const base = { source: entry.spec.label, connector: entry.spec.connector }
      const message = (item: unknown) => {
        entry.total++
        const record = { ...base, at: new Date().toISOString(), ...entry.source.fields(item) }
        if (dashboard) {
          entry.recent.push(record)
          if (entry.recent.length > 20) entry.recent.shift()
        }
        return record
      }
      const written = entry.source.written
      // A durable source's item is acknowledged after its line; an ack that fails is said, and the entry comes again.
      const after = (item: unknown): Effect.Effect<void> | undefined =>
        written === undefined
          ? undefined
          : written(item).pipe(
              Effect.catch((error) =>
                screen.line(
                  "stderr",
                  paint(
                    "red",
                    `tap: [${entry.spec.label}] ack failed, delivered again later: ${error.message}`,
                    "stderr"
                  )
                )
              )
            )
      // Each output line knows whether it is a message (for --count) or a lifecycle event (--events).
      const signals: Stream.Stream<Line, ConnectorError.ConnectorError> = options.events
        ? Stream.map(entry.source.handle.signals, (signal) =>
            Lifecycle.isEvent(signal)
              ? { message: false, record: { ...base, at: new Date().toISOString(), ...eventFields(signal) } }
              : { message: true, record: message(signal.message), after: after(signal.message) }
          )
        : Stream.map(entry.source.handle.messages, (item) => ({
            message: true,
            record: message(item),
            after: after(item)
          }))
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
              screen.line("stderr", paint("red", `tap: [${entry.spec.label}] failed: ${error.message}`, "stderr"))
            ).pipe(Stream.flatMap(() => (options.keepGoing ? Stream.empty : Stream.fail(failed))))
          }
        )
      )
    })

    let merged = Stream.mergeAll(records, { concurrency: "unbounded" })
    // --count counts messages, not the lifecycle events that --events puts in-band.
    if (Option.isSome(options.count)) {
      const limit = options.count.value
      let seen = 0
      merged = Stream.takeUntil(merged, (line) => line.message && ++seen >= limit)
    }
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
    const rows = () =>
      Effect.forEach(running, (entry) =>
        Effect.map(
          entry.source.handle.stats,
          (stats): Screen.Row => ({
            source: entry.spec.label,
            state: entry.state,
            total: entry.total,
            dropped: stats.dropped,
            reconnects: stats.reconnects
          })
        )
      )
    if (options.stats) yield* screen.statusTable(rows())

    const render = ({ record }: Line) => {
      if (Option.isSome(options.format)) return screen.line("stdout", renderTemplate(options.format.value, record))
      if (!options.pretty) return screen.line("stdout", JSON.stringify(record))
      const { source, connector, at, data, ...rest } = record
      // UTC, marked as such.
      const time = `${String(at).slice(11, 23)}Z`
      const extra = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ")
      const body = data === undefined ? undefined : typeof data === "string" ? data : JSON.stringify(data)
      return screen.line(
        "stdout",
        `${paint("dim", time)} ${paint("cyan", String(source))} ${paint("yellow", String(connector))}${extra === "" ? "" : ` ${extra}`}${body === undefined ? "" : ` ${body}`}`
      )
    }

    // The summary comes however the tap ends: sources done, --count, --duration, a failure, or a signal.
    const summary = Effect.gen(function* () {
      if (!options.stats) return
      yield* screen.stop
      const seconds = Math.max(0.001, (Date.now() - started) / 1000)
      for (const row of yield* rows()) {
        yield* screen.line(
          "stderr",
          `tap: stats: ${row.source}  ${row.state}  total=${row.total}  rate=${(row.total / seconds).toFixed(1)}/s  dropped=${row.dropped}  reconnects=${row.reconnects}`
        )
      }
    })
    // A message's record goes out, then to the --to stream, then its source's ack: an entry is acknowledged only
    // once it is written everywhere.
    const relayed = (line: Line) =>
      relay === undefined || !line.message
        ? Effect.void
        : relay
            .add([line.record])
            .pipe(
              Effect.catch((error) =>
                screen
                  .line("stderr", paint("red", `tap: --to ${relay.label}: ${error.message}`, "stderr"))
                  .pipe(Effect.andThen(Effect.fail(new SourceFailed({ source: `--to ${relay.label}`, error }))))
              )
            )
    const print = (line: Line) =>
      render(line).pipe(Effect.andThen(relayed(line)), Effect.andThen(line.after ?? Effect.void))
    const result = yield* Stream.runForEach(merged, print).pipe(Effect.ensuring(summary), Effect.exit)
    if (result._tag === "Failure") return yield* result
    // With --keep-going, failures were reported as they came; the tap fails only when no source is left.
    if (failures.length > 0 && (!options.keepGoing || failures.length === running.length)) {
      return yield* Effect.fail(failures[0]!)
    }
    // A failed source was reported as such (with --keep-going); the others must have connected at least once.
    const failed = new Set(failures.map((f) => f.source))
    const never = running
      .filter((entry) => !entry.everConnected && entry.total === 0 && !failed.has(entry.spec.label))
      .map((entry) => entry.spec.label)
    if (never.length > 0) {
      yield* screen.line("stderr", paint("red", `tap: never connected: ${never.join(", ")}`, "stderr"))
      return yield* Effect.fail(new NeverConnected({ sources: never }))
    }
  })

/** Sends each line of `input` to every sender, in order; a failed send is reported, the tap goes on. */
const sendLines = (
  input: NodeJS.ReadableStream,
  senders: ReadonlyArray<{ readonly label: string; readonly send: (line: string) => Effect.Effect<void, unknown> }>,
  report: (line: string) => Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    // Lines come at human (or pipe) speed and are few: an unbounded queue never drops one.
    const lines = Stream.callback<string>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const reader = Readline.createInterface({ input, terminal: false })
          reader.on("line", (line) => Queue.offerUnsafe(queue, line))
          reader.on("close", () => Queue.endUnsafe(queue))
          return reader
        }),
        (reader) => Effect.sync(() => reader.close())
      )
    )
    yield* lines.pipe(
      Stream.runForEach((line) =>
        Effect.forEach(
          senders,
          (sender) =>
            sender
              .send(line)
              .pipe(
                Effect.catch((error) =>
                  report(`tap: [${sender.label}] send failed: ${String((error as Error).message ?? error)}`)
                )
              ),
          { discard: true }
        )
      ),
      Effect.forkScoped
    )
  })

/** The `--to` stream's writer: records as fields, `data` and objects as JSON. A bad URI is a `UsageError`. */
const openRelay = (to: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isNone(to)) return undefined
    const uri = to.value
    const label = ConnectorError.redactUrl(uri)
    const match = /^(rediss?)\+stream:\/\/([^/]+)\/([^?#]+)$/i.exec(uri)
    if (match === null) {
      return yield* Effect.fail(
        new Sources.UsageError({ message: `--to ${label}: expected redis+stream://host:port/STREAM` })
      )
    }
    const [, scheme, authority, stream] = match
    const writer = yield* RedisStreams.writer({
      connection: `${scheme!.toLowerCase()}://${authority}`,
      stream: decodeURIComponent(stream!),
      encode: (record: Record<string, unknown>) => {
        const fields: Record<string, string> = {}
        for (const [key, value] of Object.entries(record)) {
          if (value !== undefined) fields[key] = typeof value === "string" ? value : JSON.stringify(value)
        }
        return fields
      }
    }).pipe(
      Effect.mapError((error) =>
        error.reason._tag === "Config"
          ? new Sources.UsageError({ message: `--to ${label}: ${error.message}` })
          : new SourceFailed({ source: `--to ${label}`, error })
      )
    )
    return { label, add: writer.add }
  })
