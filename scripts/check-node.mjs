// Fails early, with the fix, when a script runs on a Node older than the one StreamEmit needs. `pnpm install`
// puts Node 24 (the `node` devDependency) into node_modules/.bin, which every `pnpm run` script uses first.
import { readFileSync } from "node:fs"

const { engines } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
const required = engines.node.replace(/^>=\s*/, "")
const [major, minor, patch] = process.versions.node.split(".").map(Number)
const [rMajor, rMinor, rPatch] = required.split(".").map(Number)
const ok = major !== rMajor ? major > rMajor : minor !== rMinor ? minor > rMinor : patch >= rPatch
if (!ok) {
  console.error(
    `StreamEmit needs Node >= ${required}, but ${process.execPath} is ${process.version}.\n` +
      "Run scripts through pnpm after `pnpm install` (it installs Node 24 into node_modules/.bin), e.g. `pnpm test`."
  )
  process.exit(1)
}
