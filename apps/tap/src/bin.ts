#!/usr/bin/env node
/**
 * streamemit-tap: tap any number of push sources, chosen by URI, as one stream — readable lines on a terminal,
 * NDJSON in a pipe.
 */
import { NodeServices } from "@effect/platform-node"
import * as Cause from "effect/Cause"
import { Argument, CliError, CliOutput, Command, Flag } from "effect/cli"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Sources from "./Sources.ts"
import * as Tap from "./Tap.ts"

/** A flag that is off unless given. */
const onOff = (name: string, alias: string | undefined, description: string) => {
  const flag = Flag.Boolean(name).pipe(Flag.withDefault(false), Flag.withDescription(description))
  return alias === undefined ? flag : flag.pipe(Flag.withAlias(alias))
}

/** "30s", "2m", "1h", "500ms", or a Duration string such as "30 seconds". */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const short = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim())
  if (short !== null) {
    const n = Number(short[1])
    const unit = { ms: "millis", s: "seconds", m: "minutes", h: "hours" }[short[2] as "ms" | "s" | "m" | "h"]
    return Duration.fromInput(`${n} ${unit}` as Duration.Input)
  }
  return Duration.fromInput(text as Duration.Input)
}

/** Flags that take one value: given twice (a script's default, then the user's), the last one wins. */
const singleValued = [
  ["--duration", "-d"],
  ["--count", "-c"],
  ["--framing"],
  ["--format", "-f"],
  ["--give-up-after"],
  ["--checkpoint"],
  ["--ui"]
]

/**
 * The arguments as the user meant them: a lone `--` is dropped (pnpm passes the one of `pnpm start -- …` through,
 * which would make every flag after it a source), and a single-valued flag given twice keeps its last value.
 */
export const normalizeArgs = (args: ReadonlyArray<string>): Array<string> => {
  const tokens = args.filter((arg) => arg !== "--")
  const keep = tokens.map(() => true)
  for (const names of singleValued) {
    let last = -1
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!
      const name = names.find((n) => token === n || token.startsWith(`${n}=`))
      if (name === undefined) continue
      if (last !== -1) {
        keep[last] = false
        if (!tokens[last]!.includes("=")) keep[last + 1] = false
      }
      last = i
    }
  }
  return tokens.filter((_, i) => keep[i])
}

const command = Command.make(
  "streamemit-tap",
  {
    sources: Argument.String("source").pipe(
      Argument.withDescription(
        "ws(s)://…, sse+http(s)://…, http(s)://…, ndjson+http(s)://…, postgres://…?channel=…, redis://…?channel=…&pattern=…, redis+stream://…/STREAM?group=…, file:///dir or a path"
      ),
      Argument.variadic()
    ),
    framing: Flag.Literals("framing", ["lines", "ndjson", "sse", "bytes"]).pipe(
      Flag.withDescription("how plain http(s):// bodies are split"),
      Flag.withDefault("lines")
    ),
    events: onOff("events", "e", "lifecycle events in-band on stdout, not on stderr"),
    pretty: onOff("pretty", "p", "readable lines (the default on a terminal)"),
    json: onOff("json", "j", "NDJSON, one object per message (the default in a pipe)"),
    format: Flag.String("format").pipe(
      Flag.withAlias("f"),
      Flag.withDescription('a line per message from a template: "{at} {source} {data.price}" (fields by dotted path)'),
      Flag.optional
    ),
    count: Flag.Int("count").pipe(Flag.withAlias("c"), Flag.withDescription("stop after N messages"), Flag.optional),
    duration: Flag.String("duration").pipe(
      Flag.withAlias("d"),
      Flag.withDescription('stop after this long, e.g. "30s", "2m", "500ms"'),
      Flag.optional
    ),
    stats: onOff("stats", "s", "a live status table pinned below the messages on a terminal; a summary on exit"),
    keepGoing: onOff("keep-going", "k", "a source that fails for good is reported and dropped; the others go on"),
    giveUpAfter: Flag.Int("give-up-after").pipe(
      Flag.withDescription(
        "a source that failed N connection attempts in a row fails for good (default: retry forever)"
      ),
      Flag.optional
    ),
    failFast: onOff("fail-fast", undefined, "an unknown host is final, not retried (TLS mismatches always are)"),
    sendStdin: onOff("send-stdin", undefined, "send each line of standard input to every ws:// source"),
    ui: Flag.String("ui").pipe(
      Flag.withDescription("serve a live dashboard of every source at this address: 7070, :7070 or host:7070"),
      Flag.optional
    ),
    checkpoint: Flag.String("checkpoint").pipe(
      Flag.withDescription("resume sources with a cursor (sse+http://) where the last run stopped: a file"),
      Flag.optional
    ),
    to: Flag.String("to").pipe(
      Flag.withDescription("also add every message record to a Redis stream: redis+stream://host:port/STREAM"),
      Flag.optional
    ),
    demo: onOff(
      "demo",
      undefined,
      "start embedded sources (ws, SSE, NDJSON, a changing directory; Postgres and Redis when reachable) and tap them"
    )
  },
  (flags) =>
    Effect.gen(function* () {
      let runFor = Option.none<Duration.Duration>()
      if (Option.isSome(flags.duration)) {
        runFor = parseDuration(flags.duration.value)
        if (Option.isNone(runFor)) {
          return yield* Effect.fail(
            new Sources.UsageError({
              message: `--duration ${flags.duration.value}: not a duration (try 30s, 2m, 500ms)`
            })
          )
        }
      }
      if (Option.isSome(flags.count) && flags.count.value < 1) {
        return yield* Effect.fail(
          new Sources.UsageError({ message: `--count ${flags.count.value}: must be at least 1` })
        )
      }
      if (Option.isSome(flags.giveUpAfter) && flags.giveUpAfter.value < 1) {
        return yield* Effect.fail(
          new Sources.UsageError({ message: `--give-up-after ${flags.giveUpAfter.value}: must be at least 1` })
        )
      }
      if (flags.pretty && flags.json) {
        return yield* Effect.fail(new Sources.UsageError({ message: "--pretty and --json: choose one" }))
      }
      const output: Tap.Output = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }
      yield* Tap.run(
        {
          sources: flags.sources,
          framing: flags.framing,
          events: flags.events,
          // Readable on a terminal, NDJSON in a pipe, unless asked.
          pretty: flags.pretty || (!flags.json && Option.isNone(flags.format) && process.stdout.isTTY === true),
          format: flags.format,
          count: flags.count,
          duration: runFor,
          stats: flags.stats,
          keepGoing: flags.keepGoing,
          giveUpAfter: flags.giveUpAfter,
          failFast: flags.failFast,
          sendStdin: flags.sendStdin,
          to: flags.to,
          checkpoint: flags.checkpoint,
          ui: flags.ui,
          demo: flags.demo
        },
        output
      ).pipe(Effect.scoped)
    })
)

/** Bad flags: one line and a hint on stderr, never the help on stdout (it would go into `| jq`). */
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.sync(() => {
          const first = event.errors[0]
          const message = first === undefined ? "invalid arguments" : (first.message.split("\n")[0] ?? first.message)
          process.stderr.write(`tap: ${message}\ntap: try 'streamemit-tap --help'\n`)
        })
      : CliOutput.defaultPresenter.present(event)
})

/** Signals end the tap like the end of `--duration`: sources closed, summary printed; then the shell's code. */
const signalCodes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const

const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return 0
  const error = Cause.squash(exit.cause) as { readonly [Runtime.errorExitCode]?: number } | undefined
  if (CliError.isCliError(error)) return 2
  return typeof error === "object" && error !== null && typeof error[Runtime.errorExitCode] === "number"
    ? error[Runtime.errorExitCode]
    : 1
}

/** The error that ended the tap, once: what the tap already printed (`errorReported`) is not printed again. */
const report = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return
  const error = Cause.squash(exit.cause) as { readonly [Runtime.errorReported]?: boolean }
  if (CliError.isCliError(error) || (typeof error === "object" && error?.[Runtime.errorReported] === true)) return
  if (error instanceof Sources.UsageError) {
    process.stderr.write(`tap: ${error.message}\ntap: try 'streamemit-tap --help'\n`)
  } else process.stderr.write(`tap: ${Cause.pretty(exit.cause)}\n`)
}

// `pnpm tap -- …` hands the script a leading "--": it separates pnpm's arguments from ours, not ours from each other.
const program = Command.runWith(command, { version: "0.2.0" })(normalizeArgs(process.argv.slice(2))).pipe(
  Effect.provide(Layer.mergeAll(NodeServices.layer, presenter))
)

const fiber = Effect.runFork(program)
let signalled: number | undefined
for (const [signal, code] of Object.entries(signalCodes)) {
  process.on(signal, () => {
    // A second signal while closing: leave at once.
    if (signalled !== undefined) process.exit(code)
    signalled = code
    fiber.interruptUnsafe()
  })
}
fiber.addObserver((exit) => {
  report(exit)
  process.exitCode = signalled ?? exitCode(exit)
  // Whatever a library left behind (a keep-alive socket, a timer) must not keep the process alive.
  setImmediate(() => process.exit())
})
