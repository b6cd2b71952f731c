"""The controller-side S3 transfers do not print the environment's AWS access key id at -vvv.

amazon.aws modules copy AWS_ACCESS_KEY_ID from the environment into their `access_key`
argument, which is not a no_log argument: -vvv prints it with the module's arguments and AWX
keeps it in its job events. slm.edge.model (model_source: s3, fetched on the controller) and
slm.edge.llama_cpp (publishing a build to S3) leave the environment's credentials to botocore.
This runs the model role's controller fetch against a moto S3 at -vvv with distinctive
credentials and checks that the object arrived and that no credential is in the output.
"""

from __future__ import annotations

import json
import subprocess

from test_aws_moto import BIN, REPO, assert_no_secret

PLAY = """
- name: Fetch a model from S3 on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The model role's controller fetch
      ansible.builtin.include_role:
        name: slm.edge.model
        tasks_from: fetch_s3_controller
"""


def test_model_s3_fetch_keeps_the_access_key_out_of_the_output(aws_moto_server, aws_env, aws_client, tmp_path):
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="slm-quiet")
    s3.put_object(Bucket="slm-quiet", Key="tiny/config.json", Body=b'{"model_type": "llama"}')
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    extra = {
        "model_name": "quiet",
        "model_source": "s3",
        "model_s3_bucket": "slm-quiet",
        "model_s3_prefix": "tiny/",
        "model_s3_region": "us-east-1",
        "model_s3_endpoint_url": aws_moto_server,
        "model_root": str(tmp_path / "models"),
        "model_controller_stage_dir": str(tmp_path / "stage"),
        "ansible_python_interpreter": str(BIN / "python"),  # the venv's, with boto3
    }
    cmd = [str(BIN / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local", str(play), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=REPO, env=aws_env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert (tmp_path / "models/quiet/source/config.json").read_text() == '{"model_type": "llama"}'
    assert "s3_object" in output and "invocation" in output  # -vvv printed the module arguments
    assert_no_secret(aws_env, output)
