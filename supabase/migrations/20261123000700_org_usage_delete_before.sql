-- Deleting an organization removes its usage BEFORE the organization row goes: the rollup-delta triggers
-- that the usage delete fires (20261122002100) write rows that reference the organization, and after the
-- delete they found it gone. 20261122000600 first created this trigger AFTER DELETE; databases that
-- applied that version get the corrected timing here, the others get the same trigger recreated.
drop trigger if exists delete_organization_usage on public.organizations;
create trigger delete_organization_usage before delete on public.organizations
  for each row execute function private.delete_organization_usage();
