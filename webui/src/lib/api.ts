// A small typed client for the lollms_server API, with clear messages for auth and network failures.
import { readStreamChunks, readStreamEvents, type StreamEvent } from "./sse";
import type {
  BindingsListing, GenerateRequest, GenerateResponse, Health, JobCreated, JobInfo, ModelDetails, ModelInfo, Personality, ResourceState,
  ServerInfo, StreamChunk,
} from "./types";

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "ApiError";
  }
}

/** A message a person can act on, from an HTTP status and the server's `detail`. */
export function describeFailure(status: number, detail: string | undefined): string {
  if (status === 401) return "The API key was refused: check it and try again.";
  if (status === 403) return "This server needs an API key: enter one to connect.";
  if (status === 408) return detail || "The server was busy and the request waited too long in the queue.";
  return detail ? `${detail} (HTTP ${status})` : `The server answered HTTP ${status}.`;
}

export class LollmsClient {
  constructor(readonly baseUrl: string, readonly apiKey: string) {}

  private url(path: string): string {
    return `${this.baseUrl.replace(/\/+$/, "")}${path}`;
  }

  private headers(json = false): HeadersInit {
    const h: Record<string, string> = {};
    if (this.apiKey) h["X-API-Key"] = this.apiKey;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  private async send(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url(path), init);
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw new ApiError(`Cannot reach the server at ${this.baseUrl || globalThis.location?.origin || "this address"}.`, 0);
    }
    if (!response.ok) {
      let detail: string | undefined;
      try {
        const body = (await response.json()) as { detail?: unknown };
        detail = typeof body.detail === "string" ? body.detail : body.detail ? JSON.stringify(body.detail) : undefined;
      } catch {
        detail = undefined;
      }
      throw new ApiError(describeFailure(response.status, detail), response.status);
    }
    return response;
  }

  async get<T>(path: string): Promise<T> {
    const r = await this.send(path, { headers: this.headers() });
    return (await r.json()) as T;
  }

  health(): Promise<Health> {
    return this.get<Health>("/api/v1/health");
  }

  /** Checks the key with an authenticated call; throws ApiError with a clear message when refused. */
  async verify(): Promise<Health> {
    const health = await this.health();
    await this.get("/api/v1/get_default_bindings");
    return health;
  }

  listBindings(): Promise<BindingsListing> {
    return this.get("/api/v1/list_bindings");
  }
  async listActiveBindings(): Promise<Record<string, Record<string, unknown>>> {
    return (await this.get<{ bindings: Record<string, Record<string, unknown>> }>("/api/v1/list_active_bindings")).bindings;
  }
  async defaultBindings(): Promise<Record<string, unknown>> {
    return (await this.get<{ defaults: Record<string, unknown> }>("/api/v1/get_default_bindings")).defaults;
  }
  async listPersonalities(): Promise<{ personalities: Record<string, Personality>; load_errors: Record<string, string> }> {
    return this.get("/api/v1/list_personalities");
  }
  async listFunctions(): Promise<string[]> {
    return (await this.get<{ functions: string[] }>("/api/v1/list_functions")).functions;
  }
  async listModels(): Promise<Record<string, string[]>> {
    return (await this.get<{ models: Record<string, string[]> }>("/api/v1/list_models")).models;
  }
  async listAvailableModels(instance: string): Promise<ModelInfo[]> {
    const path = `/api/v1/list_available_models/${encodeURIComponent(instance)}`;
    return (await this.get<{ models: ModelInfo[] }>(path)).models;
  }
  modelInfo(instance: string, model: string): Promise<ModelDetails> {
    const query = model ? `?model_name=${encodeURIComponent(model)}` : "";
    return this.get(`/api/v1/get_model_info/${encodeURIComponent(instance)}${query}`);
  }
  /** Public facts for the connect screen (config file as the operator knows it); null on older servers. */
  async serverInfo(): Promise<ServerInfo | null> {
    try {
      return await this.get<ServerInfo>("/api/v1/server_info");
    } catch {
      return null;
    }
  }
  /** Embeddings of texts (POST /api/v1/embed), one vector per text, in order. */
  async embed(texts: string[], bindingName: string | null): Promise<number[][]> {
    const r = await this.send("/api/v1/embed", {
      method: "POST", headers: this.headers(true), body: JSON.stringify({ input: texts, ...(bindingName ? { binding_name: bindingName } : {}) }),
    });
    return ((await r.json()) as { embeddings: number[][] }).embeddings;
  }
  /** A request with the API key, for extension UI modules (paths on this server only). */
  async authorizedFetch(path: string, init: RequestInit = {}): Promise<Response> {
    if (!path.startsWith("/") || path.startsWith("//")) throw new ApiError("Extensions may only call paths of this server.", 0);
    const headers = new Headers(init.headers);
    if (this.apiKey) headers.set("X-API-Key", this.apiKey);
    return fetch(this.url(path), { ...init, headers });
  }
  async putJson<T>(path: string, body: unknown): Promise<T> {
    const r = await this.send(path, { method: "PUT", headers: this.headers(true), body: JSON.stringify(body) });
    return (await r.json()) as T;
  }
  resources(): Promise<ResourceState> {
    return this.get("/api/v1/resources");
  }

  /** The icon needs the X-API-Key header, so it is fetched as a blob and shown through an object URL. */
  async personalityIcon(name: string): Promise<string | null> {
    try {
      const r = await this.send(`/api/v1/personality_icon/${encodeURIComponent(name)}`, { headers: this.headers() });
      return URL.createObjectURL(await r.blob());
    } catch {
      return null;
    }
  }

  async generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResponse> {
    const r = await this.send("/api/v1/generate", {
      method: "POST", headers: this.headers(true), body: JSON.stringify({ ...request, stream: false }), signal,
    });
    return (await r.json()) as GenerateResponse;
  }

  /** Streamed generation; aborting `signal` closes the connection and the server cancels the work. */
  async *generateStream(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<StreamChunk> {
    const r = await this.send("/api/v1/generate", {
      method: "POST", headers: { ...this.headers(true), Accept: "text/event-stream" },
      body: JSON.stringify({ ...request, stream: true }), signal,
    });
    if (!r.body) throw new ApiError("The server sent no stream body.", r.status);
    yield* readStreamChunks(r.body);
  }

  /**
   * Start a generation as a job (POST /api/v1/jobs, the same body as generate). Null when this server has
   * no jobs endpoint (404/405: an older server), so the caller can stream from /api/v1/generate instead.
   */
  async createJob(request: GenerateRequest): Promise<JobCreated | null> {
    try {
      const r = await this.send("/api/v1/jobs", { method: "POST", headers: this.headers(true), body: JSON.stringify(request) });
      return (await r.json()) as JobCreated;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
      throw err;
    }
  }

  getJob(jobId: string): Promise<JobInfo> {
    return this.get(`/api/v1/jobs/${encodeURIComponent(jobId)}`);
  }

  /** Cancel a job wherever it runs; answers the job as it is now. */
  async cancelJob(jobId: string): Promise<JobInfo> {
    const r = await this.send(`/api/v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE", headers: this.headers() });
    return (await r.json()) as JobInfo;
  }

  /**
   * A job's events (SSE) with their ids: from the start, or strictly after `lastEventId` (sent as the
   * `Last-Event-ID` header). Aborting `signal` only closes this connection: the job keeps running.
   */
  async *jobEvents(jobId: string, lastEventId: string | null, signal?: AbortSignal): AsyncGenerator<StreamEvent> {
    const headers: Record<string, string> = { ...(this.headers() as Record<string, string>), Accept: "text/event-stream" };
    if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
    const r = await this.send(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal, cache: "no-store" });
    if (!r.body) throw new ApiError("The server sent no stream body.", r.status);
    yield* readStreamEvents(r.body);
  }
}
