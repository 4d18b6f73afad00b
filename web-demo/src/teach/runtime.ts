/**
 * onnxruntime-web for the Teach page: the global `ort` the page's script tag loads, its threads, and sessions on
 * WebGPU when the browser has an adapter, else on wasm.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { errorMessage } from '../error-message';

declare const ort: typeof OrtWeb;
export const Ort = ort;

/** wasm threads: `?threads=N`, else up to 4 when the page is cross-origin isolated (SharedArrayBuffer), else 1. */
export function configureRuntime(): void {
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  const available = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 4) : 1;
  ort.env.wasm.numThreads = Number.isInteger(asked) && asked > 0 ? Math.min(asked, available) : available;
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
}

/** The provider sessions get, decided once: WebGPU with an adapter (wasm takes the nodes it lacks), else wasm. */
export interface Provider {
  providers: string[];
  description: string;
}

export async function chooseProvider(): Promise<Provider> {
  const threads = ort.env.wasm.numThreads ?? 1;
  const wasm = `wasm (${threads} thread${threads === 1 ? '' : 's'})`;
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (gpu === undefined) return { providers: ['wasm'], description: `${wasm}; this browser has no WebGPU` };
  try {
    if (await gpu.requestAdapter()) return { providers: ['webgpu', 'wasm'], description: 'WebGPU' };
    return { providers: ['wasm'], description: `${wasm}; no WebGPU adapter` };
  } catch (err) {
    return { providers: ['wasm'], description: `${wasm}; WebGPU failed: ${errorMessage(err)}` };
  }
}

export async function createSession(bytes: ArrayBuffer | Uint8Array, provider: Provider, what: string): Promise<OrtWeb.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), {
      executionProviders: provider.providers, graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new Error(`onnxruntime-web could not load ${what}: ${errorMessage(err).split('\n')[0]}`);
  }
}

