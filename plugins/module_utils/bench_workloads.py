# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Built-in benchmark workloads, derived from the runbook's two use cases.

chatbot
    System prompt "You are a helpful assistant"; a user asks one or two
    sentences. The runbook sizes this at 50-150 input tokens and 100-300 output
    tokens, so each question carries a sentence of context that puts the
    prompt (system + user + chat template) at roughly 60-120 tokens, and the
    default ``max_tokens`` is 200.

summarization
    System prompt "You are a technical writer"; the user message is
    "Summarize the following text: " followed by a paragraph. The first
    paragraph is the runbook's Amazon DynamoDB text verbatim; the others
    restate other parts of the runbook at the same length (about 150-200
    tokens), so consecutive requests do not share a prompt. Default
    ``max_tokens`` is 256.

Pure data and one helper; no Ansible imports.
"""

CHATBOT_SYSTEM = "You are a helpful assistant"
SUMMARIZATION_SYSTEM = "You are a technical writer"
SUMMARIZATION_PREFIX = "Summarize the following text: "

CHATBOT_PROMPTS = (
    "Hello. I am new to running language models on my own servers and my manager asked me to look into it "
    "this week. Can you explain in a few sentences what a small language model is and why a company might "
    "choose one instead of a large hosted model?",
    "Our support team answers the same customer questions about password resets and invoices every day. "
    "How could a chatbot running on a small language model in our own data center help them, and what "
    "should we be careful about before we put it in front of customers?",
    "I have a GPU server with a single NVIDIA T4 card that has 16 GB of memory. Which model sizes and "
    "quantization levels would you suggest for a chatbot that has to answer quickly, and why does "
    "quantization make the model faster?",
    "We work in healthcare and our security policy says patient data must never leave the country. What "
    "are the main benefits of running the language model on premises or at the edge for us, compared "
    "with calling a cloud API?",
    "My chatbot sometimes gives different answers to the same question, which confuses our users. What do "
    "the temperature and seed settings do, and what values would you recommend for a support assistant "
    "that should be consistent?",
    "A factory wants to use a language model next to its machines to explain sensor alarms to the "
    "operators on the night shift. What would a good first prototype look like, and how would you "
    "measure whether it is fast enough?",
    "Could you explain the difference between the context size of a model and the maximum number of "
    "tokens it generates? I want to understand how both settings affect the memory the server needs and "
    "the length of the answers.",
    "Our team is choosing between fine-tuning a small model and using retrieval augmented generation "
    "with our internal documents. Can you compare the two approaches briefly and say when you would pick "
    "each one?",
)

SUMMARIZATION_TEXTS = (
    # The runbook's example, verbatim.
    "Amazon DynamoDB is a serverless, NoSQL database service that allows you to develop modern applications "
    "at any scale. As a serverless database, you only pay for what you use and DynamoDB scales to zero, has "
    "no cold starts, no version upgrades, no maintenance windows, no patching, and no downtime maintenance. "
    "DynamoDB offers a broad set of security controls and compliance standards. For globally distributed "
    "applications, DynamoDB global tables is a multi-Region, multi-active database with a 99.999% "
    "availability SLA and increased resilience. DynamoDB reliability is supported with managed backups, "
    "point-in-time recovery, and more. With DynamoDB streams, you can build serverless event-driven "
    "applications.",
    "Small language models are compact transformer models, usually decoder-only or encoder-decoder, with "
    "fewer than twenty billion parameters. When they are fine-tuned for a specific domain or task they can "
    "match or even exceed the quality of much larger models, while offering faster inference, lower "
    "resource requirements and the ability to run on a wider range of devices. This makes them well suited "
    "to specialised applications and to edge computing, where space and power are limited. Their scope and "
    "accuracy are narrower than those of large language models, but retrieval augmented generation and "
    "fine-tuning close much of that gap and reduce hallucinations, giving an efficient balance between the "
    "needs of users and the cost of running the service.",
    "Llama.cpp is an optimised framework written in C and C++ that runs many kinds of small language "
    "models efficiently. It works in a wide range of computing environments, which lets generative AI "
    "models operate in AWS Local Zones or on AWS Outposts without the large GPU clusters that large models "
    "usually need in their native frameworks. A typical deployment places application servers and GPU "
    "instances behind an Application Load Balancer; a front-end application receives user queries, formats "
    "them as prompts for the model and returns the answers. When more prompts arrive than the models can "
    "handle, a message queue such as a RabbitMQ cluster can be placed in front of them to act as the queue "
    "manager for the system.",
    "To run a small language model efficiently with llama.cpp, the model has to be converted to GGUF, the "
    "GPT-Generated Unified Format. The conversion optimises performance and memory use for edge "
    "deployments with limited resources, and GGUF is designed specifically for the llama.cpp inference "
    "engine. Several runtime parameters then control how the model uses the hardware: the number of layers "
    "offloaded to the GPU, the number of CPU threads, the number of tokens to generate, how the model is "
    "split across several GPUs, the temperature that controls randomness, a fixed seed that makes results "
    "reproducible, and the context size, which determines how many tokens the model can process and how "
    "much memory it needs.",
)

WORKLOADS = ("chatbot", "summarization")


def workload_messages(workload, index):
    """Return the chat ``messages`` list for request ``index`` of ``workload``.

    Prompts are used round-robin, so request ``i`` and ``i + len(prompts)``
    carry the same text.
    """
    if workload == "chatbot":
        user = CHATBOT_PROMPTS[index % len(CHATBOT_PROMPTS)]
        system = CHATBOT_SYSTEM
    elif workload == "summarization":
        user = SUMMARIZATION_PREFIX + SUMMARIZATION_TEXTS[index % len(SUMMARIZATION_TEXTS)]
        system = SUMMARIZATION_SYSTEM
    else:
        raise ValueError("unknown workload %r (expected one of %s)" % (workload, ", ".join(WORKLOADS)))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]


def estimate_tokens(text):
    """Rough token estimate for English text (about 4 characters per token)."""
    return max(1, round(len(text) / 4.0))
