// UI module of the prompt_library extension: the web UI imports it and calls install(host).
// host.fetch(path, init) sends the user's API key; host.addPanel(title, render) adds a panel.
export function install(host) {
  host.addPanel("Prompt library", async (el) => {
    const res = await host.fetch("/ext/prompt_library/prompts");
    const { prompts } = await res.json();
    el.replaceChildren(...prompts.map((p) => {
      const item = document.createElement("div");
      item.className = "ext-prompt";
      item.textContent = `${p.name}: ${p.description || p.template.slice(0, 80)}`;
      item.title = p.template;
      return item;
    }));
  });
}
