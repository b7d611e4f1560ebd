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
}

export interface BindingType {
  type_name: string;
  display_name?: string | null;
  description?: string | null;
  version?: string | null;
  supports_streaming: boolean;
  supported_input_modalities: string[];
  supported_output_modalities: string[];
  generation_types?: string[];
  generation_parameters?: Record<string, ParamSpec>;
  source?: string | null;
}

export interface BindingsListing {
  binding_types: Record<string, BindingType>;
  binding_instances: Record<string, Record<string, unknown>>;
  load_errors: Record<string, string>;
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

export interface ParamSpec {
  type: "int" | "float";
  default: number;
  min?: number;
  max?: number;
  step?: number;
  help?: string;
}
