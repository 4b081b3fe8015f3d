-- `/reauthenticate` mails a one-time code (no link): the outbox takes its template.
alter table auth.mail_outbox drop constraint mail_outbox_template_check;
alter table auth.mail_outbox add constraint mail_outbox_template_check check (template in
    ('confirmation', 'recovery', 'magiclink', 'email_change', 'invite', 'reauthentication'));
