// Models fitted on a DataFrame column (a ColumnTransformer over one text column, issue #17): every
// entry takes the text or the record `{ [info().inputColumn]: text }`, in predict, predictBatch
// (rows and columnar) and explain, with the same results; any other record is INVALID_INPUT
// naming the column, and a model fitted on texts refuses records. An Experiment takes them as its
// arms' Model.predict does when both arms were fitted on the column, and refuses them otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { Experiment, Model } from 'skedge';
import { Model as Lite } from 'skedge/lite';
import { loadCases } from './lib/cases.mjs';

const cases = loadCases();
const columnCases = cases.filter((c) => c.name.startsWith('ct_'));
const plainCase = cases.find((c) => c.name === 'word_tfidf_lr_binary');

function thrown(fn) {
  try {
    fn();
  } catch (e) {
    assert.equal(e.name, 'SkedgeError');
    return e;
  }
  assert.fail('did not throw');
}

test('the fixtures hold DataFrame models', () => {
  assert.ok(columnCases.length >= 2, columnCases.map((c) => c.name).join(', '));
});

for (const [entry, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
  for (const c of columnCases) {
    test(`${entry}: ${c.name} predicts records as texts, bit for bit`, () => {
      const model = M.fromBytes(c.bytes);
      const column = model.info().inputColumn;
      assert.equal(typeof column, 'string');
      assert.equal(model.info().formatVersion, 4);
      const texts = c.expected.map((e) => e.text);
      const records = texts.map((t) => ({ [column]: t }));
      const byText = texts.map((t) => model.predict(t));
      assert.deepEqual(records.map((r) => model.predict(r)), byText);
      assert.deepEqual(model.predictBatch(records), byText);
      assert.deepEqual(model.predictBatch(records, { columnar: true }), model.predictBatch(texts, { columnar: true }));
      // Mixed batches too.
      assert.deepEqual(model.predictBatch([texts[0], records[1]]), [byText[0], byText[1]]);
      if (entry === 'skedge') assert.deepEqual(model.explain(records[0], 3), model.explain(texts[0], 3));
      for (const e of c.expected.slice(0, 20)) assert.deepEqual(model.predict({ [column]: e.text }).label, e.label);
      model.free();
    });

    test(`${entry}: ${c.name} refuses other records, naming the column`, () => {
      const model = M.fromBytes(c.bytes);
      const column = model.info().inputColumn;
      for (const bad of [{}, { other: 'x' }, { [column]: 'x', id: '1' }, { [column]: 3 }, { [column]: null }, 42, null,
        ['x']]) {
        const e = thrown(() => model.predict(bad));
        assert.equal(e.code, 'INVALID_INPUT', JSON.stringify(bad));
        assert.ok(e.message.includes(JSON.stringify(column)), e.message);
      }
      const e = thrown(() => model.predictBatch(['ok', { [column]: 'ok' }, { nope: 'x' }]));
      assert.equal(e.code, 'INVALID_INPUT');
      assert.equal(e.index, 2);
      assert.match(e.message, /texts\[2\]/);
      model.free();
    });
  }

  test(`${entry}: a model fitted on texts refuses records`, () => {
    const model = M.fromBytes(plainCase.bytes);
    assert.equal(model.info().inputColumn, null);
    const e = thrown(() => model.predict({ text: 'good' }));
    assert.equal(e.code, 'INVALID_INPUT');
    assert.match(e.message, /not a record/);
    assert.equal(thrown(() => model.predictBatch([{ text: 'good' }])).index, 0);
    model.free();
  });
}

test('Experiment.predict takes records as Model.predict does when both arms were fitted on the column', () => {
  const c = columnCases.find((x) => x.name.includes('3class')) ?? columnCases[0];
  const [champion, challenger] = [Model.fromBytes(c.bytes), Model.fromBytes(c.bytes)];
  const column = champion.info().inputColumn;
  const texts = c.expected.slice(0, 20).map((e) => e.text);
  for (const options of [{ seed: 3 }, { mode: 'canary', share: 0.5, seed: 3 }]) {
    const [byRecord, byText] = [new Experiment(champion, challenger, options), new Experiment(champion, challenger, options)];
    for (const t of texts) {
      const r = byRecord.predict({ [column]: t });
      const { id, ...served } = byText.predict(t);
      assert.deepEqual({ ...r, id: undefined }, { ...served, id: undefined }, 'the same arm, prediction and shadow');
      const model = r.arm === 'champion' ? champion : challenger;
      assert.deepEqual({ label: r.label, decision: r.decision, proba: r.proba }, model.predict({ [column]: t }));
      assert.deepEqual(byRecord.predict({ [column]: t }, { key: 'k' }).arm, byText.predict(t, { key: 'k' }).arm);
    }
    assert.equal(byRecord.snapshot().seen, byText.snapshot().seen);
    // Refused as Model.predict refuses them: the same code and message.
    for (const bad of [{}, { other: 'x' }, { [column]: 'x', id: '1' }, { [column]: 3 }, 42, null, ['x']]) {
      const e = thrown(() => byRecord.predict(bad));
      const want = thrown(() => champion.predict(bad));
      assert.equal(e.code, 'INVALID_INPUT', JSON.stringify(bad));
      assert.equal(e.message, want.message);
    }
    byRecord.free();
    byText.free();
  }
  champion.free();
  challenger.free();
});

test('Experiment.predict: arms fitted on different columns take texts, and refuse records naming both', () => {
  const c = columnCases.find((x) => x.name.includes('binary')) ?? columnCases[0];
  const onColumn = Model.fromBytes(c.bytes);
  const onTexts = Model.fromBytes(plainCase.bytes);
  assert.deepEqual(onColumn.info().classes, onTexts.info().classes, 'an experiment needs the same classes');
  const column = onColumn.info().inputColumn;
  for (const [champion, challenger] of [[onColumn, onTexts], [onTexts, onColumn]]) {
    const exp = new Experiment(champion, challenger, { seed: 1 });
    const text = c.expected[0].text;
    const r = exp.predict(text);
    assert.deepEqual({ label: r.label, decision: r.decision, proba: r.proba }, champion.predict(text));
    assert.deepEqual(r.shadow, challenger.predict(text));
    for (const bad of [{ [column]: text }, { text }, 42]) {
      const e = thrown(() => exp.predict(bad));
      assert.equal(e.code, 'INVALID_INPUT');
      assert.ok(e.message.includes(`column ${JSON.stringify(column)}`) && e.message.includes('texts'), e.message);
    }
    assert.equal(exp.snapshot().seen, 1, 'a refused record is not counted');
    exp.free();
  }
  onColumn.free();
  onTexts.free();
});

// A String object is no text (no coercion) and no record either: `plain` would make it a record of
// its characters ("this model takes a text, not a record"). Every place a text is read says what
// it is: another realm's and a subclass's too.
test('a String object is refused as a String object wherever a text is read, not as a record', () => {
  class Text extends String {}
  const strings = [new String('good food'), runInNewContext('new String("good food")'), new Text('good food')];
  const want = (what) => new RegExp(`^${what.replace(/[[\]]/g, '\\$&')} must be a primitive string, got a String object`);
  const check = (fn, what, index) => {
    const e = thrown(fn);
    assert.equal(e.code, 'INVALID_INPUT');
    assert.match(e.message, want(what));
    assert.equal(e.index, index);
  };
  const byColumn = columnCases.find((x) => x.name.includes('binary')) ?? columnCases[0];
  for (const [entry, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
    for (const c of [plainCase, byColumn]) {
      const model = M.fromBytes(c.bytes);
      for (const s of strings) {
        check(() => model.predict(s), 'text');
        check(() => model.predictBatch(['ok', s]), 'texts[1]', 1);
        check(() => model.predictBatch([s], { columnar: true }), 'texts[0]', 0);
        if (entry === 'skedge') check(() => model.explain(s, 3), 'text');
      }
      // The primitive string it holds is a text.
      assert.deepEqual(model.predict(strings[0].valueOf()), model.predict('good food'));
      model.free();
    }
  }
  for (const pair of [[plainCase, plainCase], [byColumn, byColumn], [byColumn, plainCase]]) {
    const [champion, challenger] = pair.map((c) => Model.fromBytes(c.bytes));
    const exp = new Experiment(champion, challenger, { seed: 1 });
    for (const s of strings) check(() => exp.predict(s), 'text');
    assert.equal(exp.snapshot().seen, 0, 'nothing was counted');
    exp.free();
    champion.free();
    challenger.free();
  }
});
