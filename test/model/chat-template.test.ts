import { describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError, DEFAULT_CHAT_TEMPLATE, resolveChatTemplate, strftime } from '../../src/model/chat-template';
import { reference, tokenizerConfig } from '../data/fixture';

const chat = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
];

const catchError = (fn: () => unknown): ChatTemplateError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ChatTemplateError);
    return e as ChatTemplateError;
  }
  throw new Error('expected a ChatTemplateError');
};

describe('chat template selection', () => {
  it('uses tokenizer_config.json chat_template and reproduces the reference prompt', () => {
    const t = ChatTemplate.fromModelFiles({ tokenizerConfig: tokenizerConfig() });
    expect(t.origin).toBe('tokenizer_config.json');
    expect(t.render([{ role: 'user', content: 'What is LoRA?' }], { addGenerationPrompt: true })).toBe(reference().greedy.prompt_text);
    expect(t.render(chat)).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n');
  });

  it('picks "default" from a named list, another entry by name, and refuses an ambiguous list', () => {
    const list = [
      { name: 'tool_use', template: 'TOOLS {{ messages[0].content }}' },
      { name: 'default', template: 'DEFAULT {{ messages[0].content }}{{ eos_token }}' },
    ];
    const cfg = { ...tokenizerConfig(), chat_template: list };
    expect(ChatTemplate.fromModelFiles({ tokenizerConfig: cfg }).render(chat)).toBe('DEFAULT Be brief.<|im_end|>');
    const tool = ChatTemplate.fromModelFiles({ tokenizerConfig: cfg, name: 'tool_use' });
    expect(tool.name).toBe('tool_use');
    expect(tool.render(chat)).toBe('TOOLS Be brief.');
    // the object form name → template
    expect(resolveChatTemplate({ tokenizerConfig: { chat_template: { default: 'A', rag: 'B' } } })).toEqual({ source: 'A', origin: 'tokenizer_config.json', name: 'default' });
    // a single entry without the name default is taken
    expect(resolveChatTemplate({ tokenizerConfig: { chat_template: [{ name: 'only', template: 'X' }] } }).source).toBe('X');
    const e = catchError(() => resolveChatTemplate({ tokenizerConfig: { chat_template: [list[0], { name: 'rag', template: 'R' }] } }));
    expect(e.code).toBe('chat-template');
    expect(e.message).toMatch(/no chat template named "default"; it has "tool_use", "rag"/);
    expect(catchError(() => resolveChatTemplate({ tokenizerConfig: { chat_template: [{ name: 1 }] } })).message).toMatch(/entry 0/);
  });

  it('lets chat_template.jinja win over tokenizer_config.json', () => {
    const t = ChatTemplate.fromModelFiles({ tokenizerConfig: tokenizerConfig(), chatTemplateJinja: '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{% endfor %}' });
    expect(t.origin).toBe('chat_template.jinja');
    expect(t.render(chat)).toBe('<|im_start|>[system][user][assistant]');
  });

  it('gives a model without a template the documented ChatML default', () => {
    const cfg = tokenizerConfig();
    const fixtureTemplate = cfg.chat_template;
    delete cfg.chat_template;
    const t = ChatTemplate.fromModelFiles({ tokenizerConfig: cfg });
    expect(t.origin).toBe('default');
    expect(t.source).toBe(DEFAULT_CHAT_TEMPLATE);
    // The fixture's template is ChatML too: both give the same text.
    expect(t.render(chat, { addGenerationPrompt: true })).toBe(new ChatTemplate(fixtureTemplate as string).render(chat, { addGenerationPrompt: true }));
    expect(ChatTemplate.fromModelFiles({}).origin).toBe('default');
  });
});

describe('chat template rendering', () => {
  it('passes bos_token, eos_token, add_generation_prompt, extra variables and strftime_now', () => {
    const t = new ChatTemplate("{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ custom }}|{{ strftime_now('%d %b %Y') }}", {
      bosToken: '<s>',
      eosToken: '</s>',
      now: () => new Date(2024, 6, 26),
    });
    expect(t.render([], { addGenerationPrompt: true, variables: { custom: 'x' } })).toBe('<s>|</s>|true|x|26 Jul 2024');
    expect(strftime(new Date(2025, 0, 5, 13, 7, 9), '%Y-%m-%d %H:%M:%S %A %B %y %I%p %%')).toBe('2025-01-05 13:07:09 Sunday January 25 01PM %');
  });

  it('reports raise_exception and parse errors as ChatTemplateError', () => {
    const t = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}");
    const e = catchError(() => t.render(chat));
    expect(e.code).toBe('template-exception');
    expect(e.message).toMatch(/Conversation must start with user/);
    expect(catchError(() => new ChatTemplate('{% for x in %}')).code).toBe('chat-template');
    expect(catchError(() => new ChatTemplate('{{ nothing() }}').render([])).message).toMatch(/failed/);
  });
});

describe('chat template guard', () => {
  it('stops a template that evaluates too many steps', () => {
    const t = new ChatTemplate('{% for i in range(300) %}{% for j in range(300) %}x{% endfor %}{% endfor %}', { limits: { maxSteps: 20_000 } });
    const e = catchError(() => t.render([]));
    expect(e.code).toBe('template-limit');
    expect(e.message).toMatch(/more than 20,000 steps/);
  });

  it('stops a template that runs too long', () => {
    const t = new ChatTemplate('{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}', {
      limits: { maxSteps: Number.MAX_SAFE_INTEGER, timeoutMs: 150 },
    });
    const t0 = performance.now();
    const e = catchError(() => t.render([]));
    expect(e.message).toMatch(/longer than 150 ms/);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('stops runaway output, lists and range()', () => {
    const doubling = new ChatTemplate("{% set s = 'xxxxxxxxxx' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}");
    expect(catchError(() => doubling.render([])).message).toMatch(/more than 16,777,216 characters/);
    const lists = new ChatTemplate('{% set a = [1, 2] %}{% for i in range(40) %}{% set a = a + a %}{% endfor %}{{ a | length }}', { limits: { maxListLength: 50_000 } });
    expect(catchError(() => lists.render([])).message).toMatch(/list of more than 50,000 items/);
    const t0 = performance.now();
    const huge = new ChatTemplate('{% for i in range(10**9) %}x{% endfor %}');
    expect(catchError(() => huge.render([])).message).toMatch(/range\(\) of 1,000,000,000 items/);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('with the default limits a hostile nested loop ends within the time bound', () => {
    const t = new ChatTemplate('{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}');
    const t0 = performance.now();
    expect(catchError(() => t.render([])).code).toBe('template-limit');
    expect(performance.now() - t0).toBeLessThan(4000);
  });

  it('refuses a template nested too deeply to parse, as a ChatTemplateError rather than a crash', () => {
    // @huggingface/jinja parses recursively; 100k nested parentheses overflow the call stack.
    const deep = `{{ ${'('.repeat(100_000)}1${')'.repeat(100_000)} }}`;
    expect(catchError(() => new ChatTemplate(deep)).code).toBe('chat-template');
    // Macros cannot call themselves in @huggingface/jinja, so there is no unbounded recursion at render time.
    expect(catchError(() => new ChatTemplate('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}').render([])).message).toMatch(/not a function/);
  });

  it('renders a long real conversation well inside the limits', () => {
    const messages = Array.from({ length: 400 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` }));
    const t = ChatTemplate.fromModelFiles({ tokenizerConfig: tokenizerConfig() });
    expect(t.render(messages).split('<|im_start|>').length).toBe(401);
  });
});
