import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatTemplate } from '@switchyard/models';
import { parseToolCalls, templateMessages, toolCallId, ToolCallSplitter, type ToolCallDelta } from './tool-calls';
import type { ChatMessage, FunctionTool } from './openai.schemas';

/** Feeds `text` in pieces of `size` characters and merges the deltas as OpenAI's clients do, by call index. */
function streamed(text: string, size: number) {
  const splitter = new ToolCallSplitter(true);
  let content = '';
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  const deltas: ToolCallDelta[] = [];
  for (let i = 0; i < text.length; i += size) {
    const delta = splitter.push(text.slice(i, i + size));
    content += delta.content;
    for (const d of delta.toolCalls) {
      deltas.push(d);
      calls[d.index] ??= { arguments: '' };
      if (d.id) Object.assign(calls[d.index], { id: d.id, name: d.function.name });
      calls[d.index].arguments += d.function.arguments;
    }
  }
  return { splitter, content, calls, deltas };
}

describe('tool calls read back from the constrained answer', () => {
  it('splits one call and an array of calls, whatever the pieces, with escapes and nesting in the arguments', () => {
    const args = ['{"q":"a \\"}\\" b","n":{"x":[1,{"y":"]"}]}}', '{}', '{"s":"\\\\"}'];
    const one = `{"name":"search","arguments":${args[0]}}`;
    const many = `[${args.map((a, i) => `{"name":"f${i}","arguments":${a}}`).join(',')}]`;
    for (const size of [1, 2, 3, 7, 1000]) {
      const a = streamed(one, size);
      assert.ok(a.splitter.complete);
      assert.equal(a.content, '');
      assert.deepEqual(
        a.calls.map((c) => [c.name, c.arguments]),
        [['search', args[0]]],
      );
      const b = streamed(many, size);
      assert.ok(b.splitter.complete, `size ${size}`);
      assert.deepEqual(
        b.calls.map((c) => [c.name, c.arguments]),
        args.map((x, i) => [`f${i}`, x]),
      );
      // each call's first delta carries its id, type and name with empty arguments
      for (let i = 0; i < args.length; i++) {
        const first = b.deltas.find((d) => d.index === i)!;
        assert.equal(first.type, 'function');
        assert.match(first.id!, /^call_[A-Za-z0-9]{24}$/);
        assert.equal(first.function.arguments, '');
      }
    }
  });

  it('takes text that does not open like JSON as text, and a cut-off call as incomplete', () => {
    const text = streamed('Hello {"name":"x"}', 2);
    assert.equal(text.content, 'Hello {"name":"x"}');
    assert.equal(text.splitter.complete, false);
    assert.equal(text.splitter.isCalls, false);
    assert.equal(parseToolCalls('{"name":"f","arguments":{"a":'), null);
    assert.equal(parseToolCalls('plain'), null);
    assert.equal(parseToolCalls('{"nom":"f"}'), null);
    assert.deepEqual(
      parseToolCalls('{"name":"f","arguments":{"a":1}}')?.map((c) => c.function),
      [{ name: 'f', arguments: '{"a":1}' }],
    );
    const passthrough = new ToolCallSplitter(false);
    assert.equal(passthrough.push('{"a":1}').content, '{"a":1}');
    assert.notEqual(toolCallId(), toolCallId());
  });

  it('renders tools and earlier calls for templates that know them, and as text for those that do not', () => {
    const tools: FunctionTool[] = [
      { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } },
    ];
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'go' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
      },
      { role: 'tool', content: '42', tool_call_id: 'call_1' },
    ];
    const use = { shown: tools, textAllowed: true, parallel: true };
    const plain = new ChatTemplate(
      "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
      {},
    );
    const out = templateMessages(plain, messages, use);
    assert.match(out.messages[0].content, /^Be brief\.\n\nYou can call these tools:\n\{"name":"f","parameters":/);
    assert.match(
      out.messages[0].content,
      /answer only with JSON \{"name": <tool name>, "arguments": <arguments object>\}/,
    );
    assert.equal(out.messages[2].content, '{"name":"f","arguments":{"a":1}}');
    assert.equal(out.messages[3].content, '42');
    assert.deepEqual(out.extra, {});
    assert.match(plain.render(out.messages, { extra: out.extra }), /<tool>42<assistant>$/);

    const aware = new ChatTemplate(
      '{% for m in messages %}{% if m.tool_calls %}{{ m.tool_calls[0].function.name }}({{ m.tool_calls[0].function.arguments.a }}){% else %}{{ m.content }}{% endif %}{% endfor %}{{ tools | length }}',
      {},
    );
    const rendered = templateMessages(aware, messages, use);
    assert.equal(rendered.messages[0].content, 'Be brief.');
    assert.deepEqual(rendered.extra, { tools });
    assert.equal(aware.render(rendered.messages, { extra: rendered.extra }), 'Be brief.gof(1)421');
    // no tools in play (tool_choice none): no preamble
    assert.equal(templateMessages(plain, messages, null).messages[0].content, 'Be brief.');
  });
});
