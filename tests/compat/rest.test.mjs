// supabase-js's query builder against Tally's /rest/v1. Run by the Rust test
// `compat::supabase_js_rest` (crates/rest/tests/integration/compat.rs), which starts Tally
// with the library fixture schema (authors, books, reviewers, book_reviewers, long_books,
// functions add/books_by/touch/titles) and passes TALLY_URL, TALLY_ANON_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';

const url = process.env.TALLY_URL;
const anonKey = process.env.TALLY_ANON_KEY;
assert.ok(url && anonKey, 'TALLY_URL and TALLY_ANON_KEY must be set');
const supabase = createClient(url, anonKey, {
  auth: { autoRefreshToken: false, persistSession: false },
  realtime: { transport: ws },
});

test('select with embeds, filters, order and range', async () => {
  const { data, error } = await supabase
    .from('books')
    .select('title, pages, author:authors!books_author_id_fkey(name), reviewers(name)')
    .gte('pages', 100)
    .order('pages', { ascending: false })
    .range(0, 1);
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: 'Engines', pages: 420, author: { name: 'Ada' }, reviewers: [] },
    { title: 'Cobol Days', pages: 350, author: { name: 'Grace' }, reviewers: [{ name: 'Sam' }] },
  ]);
});

test('every filter helper', async () => {
  const titles = async (build) => {
    const { data, error } = await build(supabase.from('books').select('title').order('id'));
    assert.equal(error, null);
    return data.map((b) => b.title);
  };
  assert.deepEqual(await titles((q) => q.eq('genre', 'science')), ['Notes', 'Engines']);
  assert.deepEqual(await titles((q) => q.neq('genre', 'science')), ['Cobol Days']);
  assert.deepEqual(await titles((q) => q.gt('pages', 300).lt('pages', 400)), ['Cobol Days']);
  assert.deepEqual(await titles((q) => q.lte('pages', 90)), ['Compilers']);
  assert.deepEqual(await titles((q) => q.like('title', '%o%').ilike('title', 'c%')), ['Cobol Days', 'Compilers']);
  assert.deepEqual(await titles((q) => q.is('genre', null)), ['Compilers']);
  assert.deepEqual(await titles((q) => q.in('id', [1, 4])), ['Notes', 'Compilers']);
  assert.deepEqual(await titles((q) => q.not('genre', 'is', null).not('genre', 'eq', 'science')), ['Cobol Days']);
  assert.deepEqual(await titles((q) => q.or('pages.lt.100,title.eq.Notes')), ['Notes', 'Compilers']);
  assert.deepEqual(await titles((q) => q.match({ genre: 'science', pages: 420 })), ['Engines']);
  assert.deepEqual(await titles((q) => q.filter('title', 'in', '("Notes","Engines")')), ['Notes', 'Engines']);
  assert.deepEqual(await titles((q) => q.textSearch('title', 'cobol', { type: 'websearch', config: 'english' })), ['Cobol Days']);
  assert.deepEqual(await titles((q) => q.likeAnyOf('title', ['N%', 'E%'])), ['Notes', 'Engines']);
  const { data: authors } = await supabase.from('authors').select('name').contains('tags', ['math']);
  assert.deepEqual(authors, [{ name: 'Ada' }]);
  const { data: overlapping } = await supabase.from('authors').select('name').overlaps('tags', ['navy']).order('name');
  assert.deepEqual(overlapping, [{ name: 'Grace' }]);
});

test('count, head, single and maybeSingle', async () => {
  const counted = await supabase.from('books').select('id', { count: 'exact' }).limit(1);
  assert.equal(counted.error, null);
  assert.equal(counted.count, 4);
  assert.equal(counted.data.length, 1);
  const head = await supabase.from('books').select('*', { count: 'exact', head: true });
  assert.equal(head.count, 4);
  assert.equal(head.data, null);
  const single = await supabase.from('books').select('title').eq('id', 3).single();
  assert.deepEqual(single.data, { title: 'Cobol Days' });
  const tooMany = await supabase.from('books').select('title').single();
  assert.equal(tooMany.error.code, 'PGRST116');
  const maybe = await supabase.from('books').select('title').eq('id', 99).maybeSingle();
  assert.equal(maybe.error, null);
  assert.equal(maybe.data, null);
});

test('insert, upsert, update and delete with select()', async () => {
  const inserted = await supabase.from('reviewers').insert([{ id: 10, name: 'Jo' }, { id: 11, name: 'Kim' }]).select();
  assert.equal(inserted.error, null);
  assert.equal(inserted.status, 201);
  assert.deepEqual(inserted.data, [{ id: 10, name: 'Jo' }, { id: 11, name: 'Kim' }]);
  const upserted = await supabase.from('reviewers').upsert({ id: 10, name: 'Joanna' }).select('name');
  assert.deepEqual(upserted.data, [{ name: 'Joanna' }]);
  const updated = await supabase.from('reviewers').update({ name: 'Kimberly' }).eq('id', 11).select();
  assert.deepEqual(updated.data, [{ id: 11, name: 'Kimberly' }]);
  const deleted = await supabase.from('reviewers').delete().in('id', [10, 11]).select('id');
  assert.deepEqual(deleted.data, [{ id: 10 }, { id: 11 }]);
  const minimal = await supabase.from('reviewers').insert({ id: 12, name: 'Lee' });
  assert.equal(minimal.error, null);
  assert.equal(minimal.status, 201);
  const duplicate = await supabase.from('reviewers').insert({ id: 12, name: 'Lee' });
  assert.equal(duplicate.error.code, '23505');
  assert.equal(duplicate.status, 409);
});

test('csv', async () => {
  const { data, error } = await supabase.from('authors').select('id,name').order('id').limit(2).csv();
  assert.equal(error, null);
  // As PostgREST writes it: no newline after the last row.
  assert.equal(data, 'id,name\n1,Ada\n2,Grace');
});

test('rpc', async () => {
  const sum = await supabase.rpc('add', { a: 2, b: 3 });
  assert.equal(sum.data, 5);
  const viaGet = await supabase.rpc('add', { a: 2 }, { get: true });
  assert.equal(viaGet.data, 12);
  const set = await supabase.rpc('books_by', { author: 2 }).select('title').order('id');
  assert.deepEqual(set.data, [{ title: 'Cobol Days' }, { title: 'Compilers' }]);
  const none = await supabase.rpc('touch');
  assert.equal(none.error, null);
  assert.equal(none.status, 204);
  const missing = await supabase.rpc('nope');
  assert.equal(missing.error.code, 'PGRST202');
});
