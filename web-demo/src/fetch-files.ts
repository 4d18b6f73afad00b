/** The page's files from the server: bytes or JSON, never cached stale, with one message naming the file. */

export async function fetchBytes(url: string): Promise<ArrayBuffer> {
  return (await fetchOk(url)).arrayBuffer();
}

/** Parsed JSON of `url`, unchecked: callers check the shape (model cards have their own checks). */
export async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetchOk(url);
  try {
    return (await response.json()) as T;
  } catch {
    throw new Error(`${url} is not valid JSON`);
  }
}

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}
