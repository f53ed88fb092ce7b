// 回音沙盒页面 (Huiyin sandbox page): plain JS over the control API in README.md.
"use strict";

// Relative, so the page also works when the sandbox is mounted under a prefix.
const API = "sandbox/api";
const POLL_MS = 1000;
const ALL_TOPICS = "all";   // forum view: every topic at once; posts go to General
const GENERAL = "0";        // General topic (no message_thread_id)

const relative = (url) => url.replace(/^\//, "");

const world = { bot: null, users: new Map(), chats: new Map(), demo: null };

async function api(method, path, body) {
  const response = await fetch(API + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function userName(user) {
  if (!user) return "?";
  return [user.first_name, user.last_name].filter(Boolean).join("");
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 2500);
}

function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",")[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

const SERVICE_TEXT = {
  forum_topic_created: (s) => `创建话题 (topic created)：${s.name}`,
  forum_topic_edited: (s) => `话题已修改 (topic edited)${s.name ? "：" + s.name : ""}`,
  forum_topic_closed: () => "话题已关闭 (topic closed)",
  forum_topic_reopened: () => "话题已重新打开 (topic reopened)",
  supergroup_chat_created: () => "群组已创建 (group created)",
  group_chat_created: () => "群组已创建 (group created)",
};

function serviceText(service) {
  const [key, value] = Object.entries(service)[0];
  return (SERVICE_TEXT[key] || (() => key))(value);
}

class Panel {
  constructor(title, chatId, userId) {
    const fragment = document.getElementById("panel-template").content.cloneNode(true);
    this.root = fragment.querySelector(".panel");
    this.root.querySelector(".panel-title").textContent = title;
    this.chatSelect = this.root.querySelector(".chat-select");
    this.userSelect = this.root.querySelector(".user-select");
    this.topicsNav = this.root.querySelector(".topics");
    this.list = this.root.querySelector(".messages");
    this.replyKeyboard = this.root.querySelector(".reply-keyboard");
    this.replying = this.root.querySelector(".replying");
    this.textarea = this.root.querySelector("textarea");
    this.blockToggle = this.root.querySelector(".block-toggle");
    this.chatId = chatId;
    this.userId = userId;
    this.topic = ALL_TOPICS;
    this.replyTo = null;
    this.seenRevision = null;
    this.byId = new Map();
    this.wire();
    document.getElementById("panels").append(this.root);
  }

  wire() {
    this.chatSelect.addEventListener("change", () => {
      this.chatId = Number(this.chatSelect.value);
      this.topic = ALL_TOPICS;
      this.userId = null;
      this.refreshChoices();
      this.reload();
    });
    this.userSelect.addEventListener("change", () => { this.userId = Number(this.userSelect.value); });
    this.root.querySelector(".composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText();
    });
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendText();
      }
    });
    this.root.querySelector(".photo-input").addEventListener("change", (e) => this.sendFile(e, "photo"));
    this.root.querySelector(".document-input").addEventListener("change", (e) => this.sendFile(e, "document"));
    this.root.querySelector(".cancel-reply").addEventListener("click", () => this.setReply(null));
    this.root.querySelector(".block-box").addEventListener("change", (event) => {
      api("POST", `/users/${this.chatId}/block`, { blocked: event.target.checked })
        .then(() => toast(event.target.checked ? "已屏蔽机器人 (bot blocked)" : "已解除屏蔽 (unblocked)"))
        .catch((error) => toast(error.message));
    });
  }

  get chat() { return world.chats.get(this.chatId); }

  refreshChoices() {
    const chats = [...world.chats.values()];
    this.chatSelect.replaceChildren(...chats.map((chat) =>
      el("option", { value: chat.id }, `${chat.title} (${chat.type === "private" ? "私聊" : "群"} ${chat.id})`)));
    if (this.chatId == null && chats.length) this.chatId = chats[0].id;
    this.chatSelect.value = this.chatId;
    const chat = this.chat;
    if (!chat) return;
    const people = chat.type === "private"
      ? [world.users.get(chat.id)]
      : chat.members.map((m) => world.users.get(m.user_id)).filter((u) => u && !u.is_bot);
    this.userSelect.replaceChildren(...people.filter(Boolean).map((user) =>
      el("option", { value: user.id }, `${userName(user)} (${user.id})`)));
    if (!people.some((u) => u && u.id === this.userId)) this.userId = people[0] ? people[0].id : null;
    this.userSelect.value = this.userId;
    this.blockToggle.hidden = chat.type !== "private";
    if (chat.type === "private") {
      this.root.querySelector(".block-box").checked = Boolean(world.users.get(chat.id)?.blocked_bot);
    }
    this.renderTopics();
    this.renderReplyKeyboard();
  }

  renderTopics() {
    const chat = this.chat;
    this.topicsNav.hidden = !chat || !chat.is_forum;
    if (this.topicsNav.hidden) return;
    if (this.topic !== ALL_TOPICS && this.topic !== GENERAL &&
        !chat.topics.some((t) => String(t.message_thread_id) === this.topic)) {
      this.topic = ALL_TOPICS;  // the topic was deleted
    }
    const choices = [[ALL_TOPICS, "全部 (All)"], [GENERAL, "综合 (General)"]]
      .concat(chat.topics.map((t) => [String(t.message_thread_id), (t.closed ? "🔒 " : "# ") + t.name]));
    this.topicsNav.replaceChildren(...choices.map(([id, label]) => el("button", {
      type: "button",
      class: id === this.topic ? "active" : "",
      onclick: () => { this.topic = id; this.renderTopics(); this.reload(); },
    }, label)));
  }

  renderReplyKeyboard() {
    const keyboard = this.chat && this.chat.reply_keyboard;
    this.replyKeyboard.hidden = !keyboard;
    if (!keyboard) return;
    this.replyKeyboard.replaceChildren(...keyboard.keyboard.map((row) => el("div", { class: "row" },
      ...row.map((button) => {
        const text = typeof button === "string" ? button : button.text;
        return el("button", { type: "button", onclick: () => this.send({ text }) }, text);
      }))));
  }

  reload() {
    this.seenRevision = null;
    this.list.dataset.first = "";
    this.poll().catch((error) => toast(error.message));
  }

  async poll() {
    const chat = this.chat;
    if (!chat || chat.revision === this.seenRevision) return;
    const thread = this.topic === ALL_TOPICS ? "" : `&thread=${this.topic}`;
    const messages = await api("GET", `/chats/${chat.id}/messages?after=0${thread}`);
    this.seenRevision = chat.revision;
    this.render(messages);
  }

  render(messages) {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.byId = new Map(messages.map((m) => [m.message_id, m]));
    const items = messages.map((m) => this.renderMessage(m));
    if (!items.length) items.push(el("li", { class: "empty" }, "暂无消息 (no messages yet)"));
    this.list.replaceChildren(...items);
    if (atBottom || this.list.dataset.first !== "no") this.list.scrollTop = this.list.scrollHeight;
    this.list.dataset.first = "no";
  }

  renderMessage(m) {
    if (m.service) return el("li", { class: "msg service" }, serviceText(m.service));
    const classes = ["msg"];
    if (m.from_bot) classes.push("bot");
    if (m.from && m.from.id === this.userId) classes.push("mine");
    const time = new Date(m.date * 1000).toLocaleTimeString("zh-CN", { hour12: false });
    const meta = el("div", { class: "meta" },
      el("span", { class: "who" }, m.sender_name),
      el("span", {}, `#${m.message_id} ${time}`),
      m.edit_date ? el("span", {}, "已编辑 (edited)") : null,
      this.topic === ALL_TOPICS && m.message_thread_id ? el("span", { class: "topic-tag" },
        this.topicName(m.message_thread_id)) : null,
      el("button", { type: "button", class: "link reply-to", onclick: () => this.setReply(m) }, "↩ 回复"));
    const body = el("li", { class: classes.join(" ") }, meta);
    const quoted = m.reply_to_message_id && this.byId.get(m.reply_to_message_id);
    if (quoted) body.append(el("div", { class: "quote" }, (quoted.text || quoted.caption || "[媒体]").slice(0, 80)));
    if (m.forward_origin) body.append(el("div", { class: "muted" }, "转发 (forwarded)"));
    if (m.photo) body.append(el("a", { href: relative(m.photo.url), target: "_blank" }, el("img", { src: relative(m.photo.url), alt: "photo" })));
    if (m.document) body.append(el("a", { href: relative(m.document.url), target: "_blank" }, `📄 ${m.document.file_name || "document"}`));
    if (m.html) {
      const text = el("div", { class: "text" });
      text.innerHTML = m.html;  // server-escaped: entities rendered, text escaped
      body.append(text);
    }
    const keyboard = m.reply_markup && m.reply_markup.inline_keyboard;
    if (keyboard) body.append(this.renderInlineKeyboard(m, keyboard));
    return body;
  }

  topicName(threadId) {
    const topic = this.chat.topics.find((t) => t.message_thread_id === threadId);
    return topic ? topic.name : `话题 ${threadId}`;
  }

  renderInlineKeyboard(message, rows) {
    return el("div", { class: "keyboard" }, ...rows.map((row) => el("div", { class: "row" },
      ...row.map((button) => el("button", {
        type: "button",
        title: button.callback_data || button.url || "",
        onclick: () => this.pressButton(message, button),
      }, button.text)))));
  }

  async pressButton(message, button) {
    if (button.url) { window.open(button.url, "_blank", "noopener"); return; }
    if (button.callback_data == null) { toast("此按钮沙盒不支持 (button type not simulated)"); return; }
    try {
      const result = await api("POST", "/press", {
        user_id: this.userId, chat_id: this.chatId, message_id: message.message_id,
        data: button.callback_data, timeout: 3,
      });
      const answer = result.answer;
      if (!answer) toast("机器人未应答 (no answerCallbackQuery)");
      else if (answer.show_alert) alert(answer.text || "");
      else if (answer.text) toast(answer.text);
    } catch (error) { toast(error.message); }
  }

  setReply(message) {
    this.replyTo = message ? message.message_id : null;
    this.replying.hidden = !message;
    if (message) this.replying.querySelector("span").textContent = `回复 (reply to) #${message.message_id}`;
  }

  async send(content) {
    const body = { user_id: this.userId, chat_id: this.chatId, ...content };
    if (this.chat.is_forum && this.topic !== ALL_TOPICS && this.topic !== GENERAL) {
      body.message_thread_id = Number(this.topic);
    }
    if (this.replyTo) body.reply_to_message_id = this.replyTo;
    try {
      await api("POST", "/send", body);
      this.setReply(null);
    } catch (error) { toast(error.message); }
  }

  sendText() {
    const text = this.textarea.value;
    if (!text.trim()) return;
    this.textarea.value = "";
    this.send({ text });
  }

  async sendFile(event, kind) {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    const caption = this.textarea.value.trim();
    this.textarea.value = "";
    const content = { [kind]: { base64: await fileToBase64(file), filename: file.name, mime_type: file.type } };
    if (caption) content.caption = caption;
    this.send(content);
  }
}

async function loadWorld() {
  const state = await api("GET", "/state");
  world.bot = state.bot;
  world.demo = state.demo;
  world.users = new Map([[state.bot.id, state.bot], ...state.users.map((u) => [u.id, u])]);
  world.chats = new Map(state.chats.map((c) => [c.id, c]));
  document.getElementById("bot-name").textContent = `机器人 (bot)：${state.bot.first_name} @${state.bot.username}`;
}

function defaultPanels() {
  const demo = world.demo;
  if (demo) {
    // #unit=xixiu opens that unit's group (a link from a tour or a test screenshot).
    const wanted = new URLSearchParams(location.hash.slice(1)).get("unit");
    const unit = demo.units.find((u) => u.id === wanted) || demo.units[0];
    return [
      ["市民私聊 (Citizen chat)", demo.citizen_id, demo.citizen_id],
      ["单位工作群 (Unit forum group)", unit ? unit.chat_id : null, unit ? unit.staff_user_id : null],
      ["督查私聊 (Supervisor chat)", demo.supervisor_id, demo.supervisor_id],
    ];
  }
  const ids = [...world.chats.keys()];
  return [["聊天 1 (chat 1)", ids[0]], ["聊天 2 (chat 2)", ids[1]], ["聊天 3 (chat 3)", ids[2]]];
}

async function refreshStats() {
  const stats = await api("GET", "/stats");
  document.getElementById("stats").textContent =
    `调用 (calls) ${stats.total_calls} · 429 ${stats.too_many_requests} · 待处理更新 (pending updates) ${stats.pending_updates}`;
}

async function main() {
  await loadWorld();
  const limits = await api("GET", "/limits");
  const limitsBox = document.getElementById("limits-enabled");
  limitsBox.checked = limits.enabled;
  limitsBox.addEventListener("change", () => api("POST", "/limits", { enabled: limitsBox.checked }));
  const panels = defaultPanels().map(([title, chatId, userId]) => new Panel(title, chatId ?? null, userId ?? null));
  let tick = 0;
  const loop = async () => {
    try {
      await loadWorld();
      for (const panel of panels) {
        if (tick === 0 || document.activeElement?.closest(".panel-head") !== panel.root.querySelector(".panel-head")) {
          panel.refreshChoices();
        }
        await panel.poll();
      }
      if (tick % 3 === 0) await refreshStats();
    } catch (error) {
      console.error(error);
    }
    tick += 1;
    setTimeout(loop, POLL_MS);
  };
  loop();
}

main();
