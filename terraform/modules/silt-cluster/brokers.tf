# Brokers: stateless (object durability), in an autoscaling group across
# the subnets; each allocates its id in etcd at first start.

locals {
  broker_instance_tags = merge(var.tags, module.config.broker_tags, { Name = module.config.names.broker })
}

resource "aws_launch_template" "broker" {
  name                   = module.config.names.broker
  image_id               = local.ami_id
  instance_type          = var.broker_instance_type
  vpc_security_group_ids = [aws_security_group.this["broker"].id]
  user_data              = base64encode(module.config.broker_user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this["broker"].arn
  }

  # IMDSv2 only: the user data reads the address and region through it.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_type           = "gp3"
      volume_size           = var.broker_volume_gb
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  dynamic "tag_specifications" {
    for_each = ["instance", "volume"]

    content {
      resource_type = tag_specifications.value
      tags          = local.broker_instance_tags
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = contains(data.aws_ec2_instance_type.this[var.broker_instance_type].supported_architectures, var.architecture)
      error_message = "broker_instance_type does not run ${var.architecture} (see architecture)."
    }
  }
}

resource "aws_autoscaling_group" "broker" {
  name                      = module.config.names.broker
  min_size                  = var.broker_min_count
  max_size                  = var.broker_max_count
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = aws_lb_target_group.bootstrap[*].arn
  health_check_type         = var.load_balancer ? "ELB" : "EC2"
  health_check_grace_period = 180

  launch_template {
    id      = aws_launch_template.broker.id
    version = aws_launch_template.broker.latest_version
  }

  # A new launch template version (configuration, AMI) replaces the brokers
  # a third at a time; their partitions move to the others meanwhile.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 66
    }
  }

  dynamic "tag" {
    for_each = local.broker_instance_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for s in data.aws_subnet.this : s.vpc_id == var.vpc_id])
      error_message = "Every subnet of subnet_ids must be in vpc_id."
    }

    precondition {
      condition     = length(distinct([for s in data.aws_subnet.this : s.availability_zone])) == length(var.subnet_ids)
      error_message = "subnet_ids must be in distinct availability zones (one subnet per zone), so brokers and etcd members spread over the zones."
    }
  }

  # The first broker writes a probe object and registers in etcd at start.
  depends_on = [
    aws_s3_bucket_server_side_encryption_configuration.data,
    aws_s3_bucket_public_access_block.data,
    aws_iam_role_policy.this,
    aws_volume_attachment.etcd,
  ]
}
