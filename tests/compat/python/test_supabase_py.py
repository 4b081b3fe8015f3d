"""supabase-py (the official Python client) against Tally: auth, REST, functions, storage and
realtime, unchanged. Run by the Rust test `compat_py::supabase_py` (crates/server/tests/
integration/compat_py.rs), which starts Tally and passes TALLY_URL and TALLY_ANON_KEY.
"""

import asyncio
import os
import time
import unittest

import httpx
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import (
    AsyncClientOptions,
    ClientOptions,
    acreate_client,
    create_client,
)
from supabase_auth.errors import AuthApiError
from supabase_functions.errors import FunctionsHttpError

URL = os.environ["TALLY_URL"]
ANON_KEY = os.environ["TALLY_ANON_KEY"]
PASSWORD = "correct horse battery"
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000101ff89993d1d0000000049454e44ae426082"
)


def client():
    return create_client(
        URL, ANON_KEY, ClientOptions(auto_refresh_token=False, persist_session=False)
    )


def signed_in(email):
    """A fresh client signed up (and, with autoconfirm, signed in) as `email`."""
    supabase = client()
    supabase.auth.sign_up({"email": email, "password": PASSWORD})
    return supabase


def with_org(email, name):
    supabase = signed_in(email)
    org = supabase.rpc("create_organization", {"name": name}).execute().data
    return supabase, org


class Auth(unittest.TestCase):
    def test_sign_up_in_user_refresh_and_out(self):
        supabase = client()
        up = supabase.auth.sign_up({"email": "py-auth@example.com", "password": PASSWORD})
        self.assertEqual(up.user.email, "py-auth@example.com")
        self.assertIsNotNone(up.session, "autoconfirm signs the person in")

        fresh = client()
        signed = fresh.auth.sign_in_with_password(
            {"email": "py-auth@example.com", "password": PASSWORD}
        )
        self.assertEqual(signed.user.id, up.user.id)
        self.assertEqual(fresh.auth.get_user().user.email, "py-auth@example.com")
        updated = fresh.auth.update_user({"data": {"team": "platform"}})
        self.assertEqual(updated.user.user_metadata["team"], "platform")
        refreshed = fresh.auth.refresh_session()
        self.assertNotEqual(refreshed.session.refresh_token, signed.session.refresh_token)
        fresh.auth.sign_out()
        self.assertIsNone(fresh.auth.get_session())

        with self.assertRaises(AuthApiError) as wrong:
            client().auth.sign_in_with_password(
                {"email": "py-auth@example.com", "password": "not the password"}
            )
        self.assertEqual(wrong.exception.code, "invalid_credentials")
        self.assertEqual(wrong.exception.status, 400)


class Rest(unittest.TestCase):
    def test_rows_filters_embeds_counts_and_rls(self):
        supabase, org = with_org("py-rest@example.com", "Py Co")
        me = supabase.auth.get_user().user
        project = (
            supabase.table("projects")
            .insert({"org_id": org["id"], "name": "Apollo", "code": "APL"})
            .execute()
            .data[0]
        )
        rows = [
            {"org_id": org["id"], "user_id": me.id, "project_id": project["id"],
             "comment": comment, "duration_minutes": minutes, "status": "ready"}
            for comment, minutes in [("design review", 30), ("code review", 90), ("standup", 15)]
        ]
        self.assertEqual(len(supabase.table("time_logs").insert(rows).execute().data), 3)

        long = (
            supabase.table("time_logs")
            .select("comment, duration_minutes, project:projects(name)", count="exact")
            .gte("duration_minutes", 30)
            .ilike("comment", "%review%")
            .order("duration_minutes", desc=True)
            .execute()
        )
        self.assertEqual(long.count, 2)
        self.assertEqual(
            long.data,
            [
                {"comment": "code review", "duration_minutes": 90, "project": {"name": "Apollo"}},
                {"comment": "design review", "duration_minutes": 30, "project": {"name": "Apollo"}},
            ],
        )
        standup = (
            supabase.table("time_logs")
            .update({"duration_minutes": 20})
            .eq("comment", "standup")
            .execute()
            .data
        )
        self.assertEqual(standup[0]["duration_minutes"], 20)
        one = supabase.table("time_logs").select("comment").eq("comment", "standup").single().execute()
        self.assertEqual(one.data, {"comment": "standup"})
        supabase.table("time_logs").delete().eq("comment", "standup").execute()
        self.assertEqual(
            supabase.table("time_logs").select("id", count="exact").execute().count, 2
        )

        with self.assertRaises(APIError) as bad:
            supabase.table("time_logs").select("no_such_column").execute()
        self.assertEqual(bad.exception.code, "42703")

        # Another organization's person sees none of it, not even a count.
        stranger, _ = with_org("py-rest-stranger@example.com", "Elsewhere")
        seen = stranger.table("time_logs").select("id", count="exact").execute()
        self.assertEqual((seen.data, seen.count), ([], 0))
        changed = stranger.table("projects").update({"name": "Mine now"}).eq("id", project["id"]).execute()
        self.assertEqual(changed.data, [])


class Functions(unittest.TestCase):
    def test_log_create_then_the_classified_log(self):
        supabase, org = with_org("py-fn@example.com", "Py Functions")
        supabase.table("projects").insert({"org_id": org["id"], "name": "Apollo", "code": "APL"}).execute()
        created = supabase.functions.invoke(
            "log-create",
            {"body": {"org_id": org["id"], "comment": "from 9 to 11:30 code review on apollo"},
             "responseType": "json"},
        )
        self.assertEqual(created["log"]["status"], "pending")
        for _ in range(300):
            log = (
                supabase.table("time_logs")
                .select("status, duration_minutes, project:projects(name)")
                .eq("id", created["log"]["id"])
                .single()
                .execute()
                .data
            )
            if log["status"] != "pending":
                break
            time.sleep(0.1)
        self.assertEqual(log, {"status": "ready", "duration_minutes": 150, "project": {"name": "Apollo"}})

        with self.assertRaises(FunctionsHttpError) as refused:
            supabase.functions.invoke("log-create", {"body": {"comment": "no org"}})
        self.assertEqual(refused.exception.status, 400)


class Storage(unittest.TestCase):
    def test_upload_download_sign_list_move_remove(self):
        supabase, org = with_org("py-storage@example.com", "Py Storage")
        me = supabase.auth.get_user().user
        log = (
            supabase.table("time_logs")
            .insert({"org_id": org["id"], "user_id": me.id, "comment": "design review",
                     "duration_minutes": 30, "status": "ready"})
            .execute()
            .data[0]
        )
        images = supabase.storage.from_("images")
        folder = f"{org['id']}/{log['id']}"
        up = images.upload(f"{folder}/shot.png", PNG, {"content-type": "image/png"})
        self.assertEqual(up.full_path, f"images/{folder}/shot.png")
        self.assertEqual(images.download(f"{folder}/shot.png"), PNG)

        signed = images.create_signed_url(f"{folder}/shot.png", 60)
        fetched = httpx.get(signed["signedURL"])
        self.assertEqual((fetched.status_code, fetched.content), (200, PNG))

        images.move(f"{folder}/shot.png", f"{folder}/moved.png")
        listed = images.list(folder)
        self.assertEqual([f["name"] for f in listed], ["moved.png"])
        self.assertEqual(listed[0]["metadata"]["size"], len(PNG))

        stranger, _ = with_org("py-storage-stranger@example.com", "Elsewhere")
        self.assertEqual(stranger.storage.from_("images").list(folder), [])
        with self.assertRaises(StorageApiError) as hidden:
            stranger.storage.from_("images").download(f"{folder}/moved.png")
        self.assertEqual(str(hidden.exception.status), "404", "to another org it does not exist")

        removed = images.remove([f"{folder}/moved.png"])
        self.assertEqual([f["name"] for f in removed], [f"{folder}/moved.png"])
        self.assertEqual(images.list(folder), [])


class Realtime(unittest.TestCase):
    def test_postgres_changes_and_broadcast(self):
        asyncio.run(self.changes_and_broadcast())

    async def changes_and_broadcast(self):
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False)
        owner = await acreate_client(URL, ANON_KEY, options)
        await owner.auth.sign_up({"email": "py-rt@example.com", "password": PASSWORD})
        org = (await owner.rpc("create_organization", {"name": "Py Realtime"}).execute()).data
        me = (await owner.auth.get_user()).user
        listener = await acreate_client(URL, ANON_KEY, options)
        await listener.auth.sign_up({"email": "py-rt-2@example.com", "password": PASSWORD})

        seen, heard = [], []
        changes = owner.channel("logs").on_postgres_changes(
            "INSERT", seen.append, table="time_logs", schema="public"
        )
        room = listener.channel("room").on_broadcast("hello", heard.append)
        sender = owner.channel("room")
        for channel in (changes, room, sender):
            await subscribed(channel)
        try:
            inserted = await owner.table("time_logs").insert(
                {"org_id": org["id"], "user_id": me.id, "comment": "notes",
                 "duration_minutes": 20, "status": "ready"}
            ).execute()
            await until(lambda: seen, "the insert arrives")
            record = seen[0]["data"]["record"]
            self.assertEqual(record["id"], inserted.data[0]["id"])
            self.assertEqual(record["duration_minutes"], 20)
            self.assertEqual(seen[0]["data"]["type"], "INSERT")

            await sender.send_broadcast("hello", {"from": "python"})
            await until(lambda: heard, "the broadcast arrives")
            self.assertEqual(heard[0]["payload"], {"from": "python"})
        finally:
            await owner.remove_all_channels()
            await listener.remove_all_channels()


async def subscribed(channel):
    done = asyncio.get_running_loop().create_future()

    def on_state(state, error):
        if not done.done() and state.value in ("SUBSCRIBED", "CHANNEL_ERROR", "TIMED_OUT"):
            done.set_result((state.value, error))

    await channel.subscribe(on_state)
    state, error = await asyncio.wait_for(done, 10)
    assert state == "SUBSCRIBED", f"{channel.topic}: {state} {error}"


async def until(check, what):
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


if __name__ == "__main__":
    unittest.main()
