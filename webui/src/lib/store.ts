// App state kept in the browser (localStorage): connection, choices, generation parameters, conversations.
import { reactive, watch } from "vue";
import type { Conversation } from "./conversation";
import type { GenerationType } from "./types";

const SETTINGS_KEY = "lollms.settings.v1";
const CONVERSATIONS_KEY = "lollms.conversations.v1";

export interface Settings {
  serverUrl: string; // "" = same origin
  apiKey: string;
  theme: "light" | "dark" | "system";
  personality: string;
  systemPrompt: string;
  bindings: Partial<Record<GenerationType, string>>; // "" = server default
  models: Record<string, string>; // binding instance -> model ("" = instance default)
  params: Record<string, Record<string, number | null>>; // binding instance -> parameter values
  streaming: boolean;
}

const defaultSettings: Settings = {
  serverUrl: "", apiKey: "", theme: "system", personality: "", systemPrompt: "", bindings: {}, models: {}, params: {},
  streaming: true,
};

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? ({ ...fallback, ...JSON.parse(raw) } as T) : fallback;
  } catch {
    return fallback;
  }
}

function readConversations(): Conversation[] {
  try {
    const raw = localStorage.getItem(CONVERSATIONS_KEY);
    const list: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(list) ? (list as Conversation[]) : [];
  } catch {
    return [];
  }
}

export const settings = reactive<Settings>(read(SETTINGS_KEY, { ...defaultSettings }));
export const conversations = reactive<Conversation[]>(readConversations());
export const storageWarning = reactive({ message: "" });

watch(settings, () => localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings)), { deep: true });

/** Save conversations; when the browser's quota is full, drop generated media of older chats and retry. */
export function saveConversations(): void {
  const write = (): void => localStorage.setItem(CONVERSATIONS_KEY, JSON.stringify(conversations));
  try {
    write();
    storageWarning.message = "";
  } catch {
    for (const c of [...conversations].sort((a, b) => a.updatedAt - b.updatedAt)) {
      for (const m of c.messages) {
        if (m.media?.length || m.attachments?.length) {
          m.media = [];
          m.attachments = [];
        }
      }
      try {
        write();
        storageWarning.message = "Browser storage is full: images and audio of older chats were not kept.";
        return;
      } catch {
        continue;
      }
    }
    storageWarning.message = "Browser storage is full: this chat could not be saved.";
  }
}

let saveTimer: number | undefined;
window.addEventListener("pagehide", saveConversations);
watch(conversations, () => {
  window.clearTimeout(saveTimer);
  saveTimer = window.setTimeout(saveConversations, 300);
}, { deep: true });
