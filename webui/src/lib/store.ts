// App state kept in the browser (localStorage): connection, the user's defaults for new chats, conversations.
import { reactive, watch } from "vue";
import { linkLegacyMessages, type ChatSettings, type Conversation } from "./conversation";

const SETTINGS_KEY = "lollms.settings.v1";
const CONVERSATIONS_KEY = "lollms.conversations.v1";

/** Connection and theme, plus the user's defaults: the settings every new conversation starts from. */
export interface Settings extends ChatSettings {
  serverUrl: string; // "" = same origin
  apiKey: string;
  theme: "light" | "dark" | "system";
}

const defaultSettings: Settings = {
  serverUrl: "", apiKey: "", theme: "system", mode: "ttt", personality: "", systemPrompt: "", bindings: {}, models: {},
  params: {}, streaming: true, functions: [],
};

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? ({ ...fallback, ...JSON.parse(raw) } as T) : fallback;
  } catch {
    return fallback;
  }
}

export const settings = reactive<Settings>(read(SETTINGS_KEY, { ...defaultSettings }));

/** A fresh copy of the user's defaults, for a new conversation. */
export function userDefaults(): ChatSettings {
  const { mode, personality, systemPrompt, bindings, models, params, streaming, functions } = settings;
  return JSON.parse(JSON.stringify({ mode, personality, systemPrompt, bindings, models, params, streaming, functions: functions ?? [] })) as ChatSettings;
}

/** Make these chat settings the defaults for new conversations. */
export function saveAsDefaults(chat: ChatSettings): void {
  Object.assign(settings, JSON.parse(JSON.stringify(chat)) as ChatSettings);
}

/** A conversation as stored or imported, completed to the current shape (branch links, own settings). */
export function normalizeConversation(c: Conversation): Conversation {
  if (!Array.isArray(c.messages)) c.messages = [];
  linkLegacyMessages(c);
  c.settings = { ...userDefaults(), ...(c.settings ?? {}) };
  return c;
}

function readConversations(): Conversation[] {
  try {
    const raw = localStorage.getItem(CONVERSATIONS_KEY);
    const list: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(list) ? (list as Conversation[]).filter((c) => c && typeof c === "object").map(normalizeConversation) : [];
  } catch {
    return [];
  }
}

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

// Saved 300 ms after the last change, and at least once a second while changes keep coming (a streaming
// answer and its last event id), so a closed or crashed page loses at most a second; on leaving, at once.
let saveTimer: number | undefined;
let firstUnsaved = 0;
window.addEventListener("pagehide", saveConversations);
watch(conversations, () => {
  window.clearTimeout(saveTimer);
  const now = Date.now();
  firstUnsaved ||= now;
  saveTimer = window.setTimeout(() => {
    firstUnsaved = 0;
    saveConversations();
  }, Math.max(0, Math.min(300, firstUnsaved + 1000 - now)));
}, { deep: true });
