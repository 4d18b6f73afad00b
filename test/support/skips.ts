/**
 * Tests that need a capability of the machine: onnxruntime's blocked CPU kernels, a WebGPU adapter, the absence of
 * CUDA. Where the capability is missing, the test is skipped with the reason in its name (decided while Jest
 * collects the file, so the report says what was not tested and why). Where the CI machine is known to have it
 * (CI=true, set by .ci/run), the test is required instead: it runs and fails when the capability is missing, so a
 * check never passes silently where it is meant to run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chooseDevice } from '../../src/runtime/device';
import { nchwcBlockSize } from '../../src/runtime/nchwc';
import { SKIP_MARK } from './shared';

const ROOT = path.resolve(__dirname, '..', '..');

/** CI=true in .ci/run (and on hosted CI services); 'false' or '0' count as unset. */
export const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';

/** The CPU feature flags of /proc/cpuinfo (empty where there is none). */
export function cpuFlags(): Set<string> {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set(line?.slice(line.indexOf(':') + 1).trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

/** The onnxruntime-node native folder (where `ONNXRUNTIME_NODE_INSTALL=cuda12` puts the CUDA provider). */
function cudaProviderLibrary(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const file = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch, file);
}

/** GPU device nodes (what src/runtime/device.ts looks for before trying WebGPU automatically). */
function gpuDeviceNodes(): string[] {
  if (process.platform !== 'linux') return [];
  return fs.readdirSync('/dev').filter((d) => d.startsWith('nvidia') || d === 'dri').map((d) => `/dev/${d}`);
}

/**
 * Probes that need onnxruntime: asynchronous, so at collection time they run in a child process (through jiti,
 * as graph files are loaded). Each resolves to undefined where the capability is present, else to why not.
 */
export const PROBES = {
  async nchwc(): Promise<string | undefined> {
    return (await nchwcBlockSize()) === undefined ? 'no block size whose lowered Conv agrees with the standard one (src/runtime/nchwc.ts)' : undefined;
  },
  async webgpu(): Promise<string | undefined> {
    try {
      await chooseDevice('webgpu');
      return undefined;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  },
};

const childResults = new Map<keyof typeof PROBES, string | undefined>();

function probeInChild(name: keyof typeof PROBES): string | undefined {
  if (childResults.has(name)) return childResults.get(name);
  const script = [
    "const { createJiti } = require('jiti');",
    `createJiti(${JSON.stringify(__filename)}).import(${JSON.stringify(__filename)})`,
    `.then((m) => m.PROBES[${JSON.stringify(name)}]())`,
    ".then((r) => r, (e) => 'the probe failed: ' + e.message)",
    ".then((r) => process.stdout.write('\\nPROBE ' + JSON.stringify({ missing: r ?? null }) + '\\n'));",
  ].join('');
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const line = (run.stdout as string | null)?.split('\n').find((l) => l.startsWith('PROBE '));
  const missing = line === undefined
    ? `the probe did not finish (exit ${run.status ?? run.signal}): ${((run.stderr as string | null) ?? '').trim().split('\n').pop() ?? ''}`
    : (JSON.parse(line.slice('PROBE '.length)) as { missing: string | null }).missing ?? undefined;
  childResults.set(name, missing);
  return missing;
}

export interface Capability {
  /** What the tests need, in words (for skip names and failures). */
  what: string;
  /** Why this machine must have it (e.g. "CI=true on x86-64 with AVX2"), or undefined where it may lack it. */
  requiredBecause: string | undefined;
  /** Undefined where present, else why not: a cheap synchronous check, or the name of an onnxruntime probe. */
  probe: (() => string | undefined) | keyof typeof PROBES;
}

/**
 * `test` for tests that need `cap`: a plain test where the capability is present; a skipped one named
 * `<name> -- skipped: needs <what>: <why>` where it is missing; where it is required, a test that first checks the
 * capability (in its own process) and fails with the reason when it is missing.
 */
export function testWith(cap: Capability): (name: string, fn: () => unknown, timeout?: number) => void {
  return (name, fn, timeout) => {
    if (cap.requiredBecause !== undefined) {
      test(name, async () => {
        const missing = typeof cap.probe === 'function' ? cap.probe() : await PROBES[cap.probe]();
        if (missing !== undefined) throw new Error(`needs ${cap.what}, required here (${cap.requiredBecause}), but: ${missing}`);
        await fn();
      }, timeout);
      return;
    }
    const missing = typeof cap.probe === 'function' ? cap.probe() : probeInChild(cap.probe);
    if (missing === undefined) test(name, fn as () => Promise<void>, timeout);
    else test.skip(`${name}${SKIP_MARK}needs ${cap.what}: ${missing}`, () => undefined);
  };
}

/** onnxruntime's NCHWc (channel-blocked) CPU kernels: MLAS has them on x86-64 with AVX2 (8 channels) or AVX-512 (16). */
export const NCHWC_KERNELS: Capability = {
  what: "onnxruntime's NCHWc blocked CPU kernels",
  requiredBecause: IN_CI && process.arch === 'x64' && cpuFlags().has('avx2') ? 'CI=true on x86-64 with AVX2' : undefined,
  probe: 'nchwc',
};

/** A WebGPU adapter for onnxruntime-node (a GPU's Vulkan driver, or Mesa's software lavapipe). */
export const WEBGPU_ADAPTER: Capability = {
  what: 'a WebGPU adapter',
  requiredBecause: IN_CI && process.platform === 'linux' ? 'CI=true: scripts/install-system-deps.sh installs Mesa lavapipe' : undefined,
  probe: 'webgpu',
};

// The CI machine has no GPU and skips onnxruntime-node's CUDA download (ONNXRUNTIME_NODE_INSTALL=skip in .ci/run).
const CI_HAS_NO_GPU = IN_CI ? 'CI=true: the CI machine has no GPU and no CUDA provider (.ci/run)' : undefined;

/** No CUDA provider library beside onnxruntime-node, so that CUDA cannot be chosen. */
export const NO_CUDA_PROVIDER: Capability = {
  what: 'a machine without the CUDA provider',
  requiredBecause: CI_HAS_NO_GPU,
  probe: () => (fs.existsSync(cudaProviderLibrary()) ? `${cudaProviderLibrary()} is installed` : undefined),
};

/** Neither CUDA nor a GPU device node: `auto` must end on the CPU, for known reasons. */
export const NO_GPU: Capability = {
  what: 'a machine without a GPU or the CUDA provider',
  requiredBecause: CI_HAS_NO_GPU,
  probe: () => {
    if (process.platform !== 'linux') return `${process.platform}: GPUs are only detected through /dev on Linux`;
    const found = [...(fs.existsSync(cudaProviderLibrary()) ? [cudaProviderLibrary()] : []), ...gpuDeviceNodes()];
    return found.length > 0 ? `found ${found.join(', ')}` : undefined;
  },
};
