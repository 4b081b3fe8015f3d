-- Exports (`export-create`): files the server writes under `exports/{org_id}/{export_id}/…`,
-- holding what their creator may read. Who may sign a download URL for one: the org's owners
-- and admins, and the person who made it while still a member of the org. A million-row CSV
-- is a few hundred MB, so the bucket takes up to 1 GiB per file.
update storage.buckets set file_size_limit = 1024 * 1024 * 1024 where id = 'exports';

alter policy objects_select on storage.objects using (
  (bucket_id in ('voices', 'images') and (
     private.object_org(name) = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or (owner = (select auth.uid())
         and private.object_org(name) = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
     or (private.object_org(name), owner) in (select l.org_id, l.user_id from private.led_members() l)
     or exists (select 1 from public.time_logs t
                where t.id = private.object_ref(name) and t.org_id = private.object_org(name))))
  or (bucket_id = 'exports'
      and current_setting('storage.operation', true) = 'object.sign'
      and (private.object_org(name) = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
           or (owner = (select auth.uid())
               and private.object_org(name) = any ((select private.my_org_ids())::uuid[])))));

-- A day summary is one person's hours: viewers read aggregates only (the insights views, with
-- the small-group rule), never these rows — and so never in an export either.
alter policy user_day_summaries_select on public.user_day_summaries using (
  org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
  or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
  or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l));
