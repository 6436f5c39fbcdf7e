# Instance roles; their policies are rendered (and tested) in silt-config.

locals {
  role_policies = merge(
    { broker = module.config.broker_policy },
    local.managed_etcd ? { etcd = module.config.etcd_policy } : {},
  )
}

resource "aws_iam_role" "this" {
  for_each           = local.role_policies
  name               = module.config.names["${each.key}_role"]
  assume_role_policy = module.config.assume_role_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "this" {
  for_each = { for role, policy in local.role_policies : role => policy if policy != null }
  name     = "silt"
  role     = aws_iam_role.this[each.key].id
  policy   = each.value
}

resource "aws_iam_instance_profile" "this" {
  for_each = local.role_policies
  name     = module.config.names["${each.key}_role"]
  role     = aws_iam_role.this[each.key].name
  tags     = var.tags
}
