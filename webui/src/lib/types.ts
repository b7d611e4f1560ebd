// Shapes of the lollms_server HTTP contract used by the UI (see lollms_server/api/models.py).

export type GenerationType = "ttt" | "tti" | "tts" | "stt";

export interface InputData {
  type: "text" | "image" | "audio" | "video" | "document";
  role: string;
  data: string;
  mime_type?: string;
  metadata?: Record<string, unknown>;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export interface OutputData {
  type: "text" | "image" | "audio" | "video" | "json" | "error" | "info";
  data: unknown;
  mime_type?: string | null;
  thoughts?: string | null;
  metadata?: Record<string, unknown> & { usage?: Usage; duration?: number; finish_reason?: string };
}

export type ChunkType = "chunk" | "info" | "error" | "function_call" | "final";

export interface StreamChunk {
  type: ChunkType;
  content: unknown;
  thoughts?: string | null;
  metadata?: Record<string, unknown> & { usage?: Usage };
}

export interface GenerateRequest {
  input_data: InputData[];
  personality?: string | null;
  binding_name?: string | null;
  model_name?: string | null;
  generation_type: GenerationType;
  stream: boolean;
  parameters?: Record<string, unknown>;
  functions?: string[] | null;
}

export interface GenerateResponse {
  personality?: string | null;
  request_id: string;
  output: OutputData[];
  execution_time: number;
}

export interface Health {
  status: string;
  version: string;
  api_key_required: boolean;
  auth?: "required" | "disabled";
  warnings?: string[]; // what the configuration deliberately leaves open (auth off, CORS '*')
}

export interface BindingType {
  type_name: string;
  display_name?: string | null;
  description?: string | null;
  version?: string | null;
  supports_streaming: boolean;
  supports_tools?: boolean;
  supported_input_modalities: string[];
  supported_output_modalities: string[];
  generation_types?: string[];
  parameters?: ParamDeclaration[];
  source?: string | null;
}

export interface BindingsListing {
  binding_types: Record<string, BindingType>;
  binding_instances: Record<string, Record<string, unknown>>;
  load_errors: Record<string, string>;
  instance_states?: Record<string, { state: "active" | "no_model" | "error"; detail: string | null }>;
}

export interface Personality {
  name: string;
  author?: string | null;
  version?: string | null;
  description?: string | null;
  category?: string | null;
  tags: string[];
  icon?: string | null;
  is_scripted: boolean;
}

export interface ModelInfo {
  name: string;
  context_size?: number | null;
  supports_vision?: boolean;
  supports_audio?: boolean;
  [key: string]: unknown;
}

export interface ResourceState {
  strategy: string;
  limit: number | null;
  active: number;
  waiting: number;
  queue_timeout: number;
}

/** A generation parameter a binding declares (`binding_types[t].parameters` in list_bindings). */
export interface ParamDeclaration {
  name: string;
  type: "integer" | "number" | "string" | "boolean" | "array" | "object";
  default?: unknown;
  minimum?: number | null;
  maximum?: number | null;
  choices?: unknown[] | null;
  help?: string | null;
  generation_types?: string[] | null;
}

/** One parameter field of the settings panel. */
export interface ParamSpec {
  type: "int" | "float" | "bool" | "string";
  default: number | string | boolean | null;
  min?: number;
  max?: number;
  step?: number;
  choices?: (string | number)[];
  help?: string;
}

export type ParamValue = number | string | boolean | null;

/** GET /api/v1/get_model_info/{instance}: what the model that will serve a request accepts. */
export interface ModelDetails {
  binding_instance_name: string;
  model_name?: string | null;
  context_size?: number | null;
  max_output_tokens?: number | null;
  supports_vision?: boolean;
  supports_audio?: boolean;
  supports_streaming?: boolean;
  error?: string | null;
}

/** GET /api/v1/server_info (public): shown on the connect screen. */
export interface ServerInfo {
  version: string;
  api_key_required: boolean;
  config_file: string; // as the operator knows it (relative or abbreviated), never an absolute server path
}

/** GET /api/v1/list_extensions (one item). */
export interface ExtensionInfo {
  name: string;
  version: string | null;
  description: string;
  source: string;
  tools: string[];
  filters: string[];
  ui_module: string | null;
  started: boolean;
}

/** GET /api/v1/list_filters (one item). */
export interface FilterInfo {
  name: string;
  description: string;
  source: string;
  hooks: string[];
  enabled: boolean;
  applies_globally: boolean;
  priority: number;
  valves: Record<string, unknown>;
}

/** GET /api/v1/usage?group_by=day (one group). */
export interface UsageGroup {
  day?: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  errors: number;
  cancelled: number;
  avg_duration_ms: number | null;
}

export type JobStateName = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** POST /api/v1/jobs (202): a generation that runs on the server whether or not anyone listens. */
export interface JobCreated {
  job_id: string;
  state: JobStateName;
  events_url: string;
  created_at: string | number;
}

/** GET /api/v1/jobs/{id} and DELETE /api/v1/jobs/{id}. */
export interface JobInfo {
  job_id: string;
  state: JobStateName;
  created_at?: string | number | null;
  started_at?: string | number | null;
  finished_at?: string | number | null;
  attempts?: number;
  result: GenerateResponse | null; // the non-streamed /api/v1/generate answer, once succeeded
  error: ({ message: string } & Record<string, unknown>) | null;
}
