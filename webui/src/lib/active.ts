// The conversation on screen and the settings it sends with (its own; a draft before the first message).
import { reactive } from "vue";
import type { ChatSettings, Conversation } from "./conversation";
import { conversations, userDefaults } from "./store";

export const session = reactive({ currentId: "", busy: false, controller: null as AbortController | null });

/** Settings of the chat not created yet (the empty screen); reset to the user's defaults for each new chat. */
export const draft = reactive<ChatSettings>(userDefaults());

export function currentConversation(): Conversation | undefined {
  return conversations.find((c) => c.id === session.currentId);
}

/** The settings the next request of the conversation on screen uses. */
export function active(): ChatSettings {
  return currentConversation()?.settings ?? draft;
}

export function resetDraft(): void {
  Object.assign(draft, userDefaults());
}
