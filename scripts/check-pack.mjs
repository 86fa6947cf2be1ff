// The packing check: `pnpm pack` every published package, unpack the tarball, and verify that every export
// resolves to a built file with its types, that no workspace/catalog protocol leaks, that publint is happy, and
// that the built entry points load in Node next to their real dependencies.
import { execFileSync } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

const root = resolve(import.meta.dirname, "..")
const problems = []
const work = mkdtempSync(join(tmpdir(), "streamemit-pack-"))

const packages = readdirSync(join(root, "packages"))
  .map((dir) => join(root, "packages", dir))
  .filter((dir) => existsSync(join(dir, "package.json")))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
  .filter(({ manifest }) => manifest.private !== true)

/** Every file a pattern export like "./*" can reach: the modules of src/, as built. */
const expand = (pattern, pkgDir) => {
  if (!pattern.includes("*")) return [pattern]
  const [prefix, suffix] = pattern.split("*")
  const dir = join(pkgDir, prefix)
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .map((f) => `${prefix}${f}`)
}

for (const { dir, manifest } of packages) {
  const name = manifest.name
  const out = join(work, name.replace("/", "__"))
  mkdirSync(out, { recursive: true })
  execFileSync("pnpm", ["pack", "--pack-destination", out], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] })
  const tarball = readdirSync(out).find((f) => f.endsWith(".tgz"))
  execFileSync("tar", ["-xzf", join(out, tarball), "-C", out])
  const pkgDir = join(out, "package")
  const packed = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"))
  const raw = JSON.stringify(packed)
  if (raw.includes("workspace:") || raw.includes("catalog:"))
    problems.push(`${name}: a workspace:/catalog: range leaked`)
  if (!packed.engines?.node) problems.push(`${name}: no engines.node`)
  if (!existsSync(join(pkgDir, "LICENSE"))) problems.push(`${name}: no LICENSE in the tarball`)
  const built = existsSync(join(pkgDir, "dist")) ? readdirSync(join(pkgDir, "dist")) : []
  if (built.some((file) => file.endsWith(".tsbuildinfo"))) problems.push(`${name}: a .tsbuildinfo in the tarball`)
  if (!packed.peerDependencies?.effect) problems.push(`${name}: effect is not a peer dependency`)
  const entries = []
  for (const [key, target] of Object.entries(packed.exports ?? {})) {
    if (target === null || key === "./package.json") continue
    if (typeof target !== "object" || !target.types || !target.default) {
      problems.push(`${name}: export "${key}" has no { types, default } (still pointing at src?)`)
      continue
    }
    const js = expand(target.default, pkgDir)
    if (js.length === 0) problems.push(`${name}: export "${key}" → ${target.default} matches no file`)
    for (const file of js) {
      if (!existsSync(join(pkgDir, file))) problems.push(`${name}: export "${key}" → ${file} is missing`)
      const dts = file.replace(/\.js$/, ".d.ts")
      if (!existsSync(join(pkgDir, dts))) problems.push(`${name}: export "${key}" → ${dts} (types) is missing`)
      entries.push(file)
    }
  }
  // Load the built modules with the workspace's installed dependencies beside them.
  mkdirSync(join(pkgDir, "node_modules", "@streamemit"), { recursive: true })
  for (const dep of Object.keys({ ...packed.dependencies, ...packed.peerDependencies })) {
    const installed = join(dir, "node_modules", dep)
    const link = join(pkgDir, "node_modules", dep)
    if (dep.startsWith("@streamemit/")) {
      const sibling = packages.find((p) => p.manifest.name === dep)
      if (sibling) symlinkSync(join(work, dep.replace("/", "__"), "package"), link, "dir")
    } else if (existsSync(installed)) {
      mkdirSync(join(link, ".."), { recursive: true })
      symlinkSync(installed, link, "dir")
    }
  }
  for (const file of entries) {
    try {
      await import(pathToFileURL(join(pkgDir, file)).href)
    } catch (error) {
      problems.push(`${name}: ${file} does not load: ${error.message}`)
    }
  }
  try {
    execFileSync(join(root, "node_modules", ".bin", "publint"), ["run", pkgDir, "--strict"], { stdio: "pipe" })
  } catch (error) {
    problems.push(`${name}: publint: ${error.stdout?.toString() ?? error.message}`)
  }
  console.log(`packed ${name}@${packed.version}: ${entries.length} entry points`)
}

// Type-check what a user of the published packages compiles against: a consumer importing every entry point of
// every tarball, with skipLibCheck off, sees only the packages' declared dependencies (and Node's own types).
const consumer = join(work, "consumer")
mkdirSync(join(consumer, "node_modules", "@streamemit"), { recursive: true })
mkdirSync(join(consumer, "node_modules", "@types"), { recursive: true })
symlinkSync(join(root, "node_modules", "@types", "node"), join(consumer, "node_modules", "@types", "node"), "dir")
const imports = []
for (const { manifest } of packages) {
  const pkgDir = join(work, manifest.name.replace("/", "__"), "package")
  symlinkSync(pkgDir, join(consumer, "node_modules", manifest.name), "dir")
  imports.push(`export * as ${manifest.name.replace(/\W/g, "_")} from "${manifest.name}"`)
}
writeFileSync(join(consumer, "index.ts"), `${imports.join("\n")}\n`)
writeFileSync(
  join(consumer, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      module: "NodeNext",
      moduleResolution: "NodeNext",
      target: "ES2022",
      types: ["node"]
    },
    files: ["index.ts"]
  })
)
writeFileSync(join(consumer, "package.json"), JSON.stringify({ type: "module" }))
try {
  execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", consumer], { stdio: "pipe" })
  console.log("type-check of the published packages (skipLibCheck: false) passed")
} catch (error) {
  problems.push(`a consumer does not type-check against the tarballs:\n${error.stdout?.toString() ?? error.message}`)
}

rmSync(work, { recursive: true, force: true })
if (problems.length > 0) {
  console.error(`packing check failed:\n- ${problems.join("\n- ")}`)
  process.exit(1)
}
console.log(`packing check passed for ${packages.length} package(s)`)
